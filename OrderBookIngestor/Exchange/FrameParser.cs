// Longer than ~400 lines on purpose: one allocation-free Utf8JsonReader pass per frame kind, sharing the reader
// state and the field helpers, which would otherwise have to be made public to be split across files.
using System.Buffers;
using System.Text.Json;

namespace OrderBookIngestor.Exchange;

/// <summary>
/// Turns one WebSocket text frame from Binance (raw or combined-stream form) into a typed event without
/// allocating: a Utf8JsonReader walks the received bytes once, values are parsed from their UTF-8 spans,
/// and the symbol is looked up from its bytes. A frame that does not yield a complete, valid event is
/// rejected with a reason; no field is ever defaulted.
/// </summary>
public sealed class FrameParser
{
    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 16 };

    private readonly SymbolTable _symbols;

    public FrameParser(SymbolTable symbols) => _symbols = symbols;

    public FrameKind Parse(ReadOnlySpan<byte> frame, long ingestTimeUs, out ParsedFrame result)
    {
        result = default;
        var fields = new EventFields();
        result.Reason = ParseCore(frame, ingestTimeUs, ref result, ref fields);
        if (result.Reason != RejectReason.None)
        {
            result.Kind = FrameKind.Rejected;
        }

        if (result.Kind != FrameKind.Depth)
        {
            // Level arrays are rented as soon as a level list is seen; only a depth event keeps them.
            fields.ReleaseLevels();
        }

        return result.Kind;
    }

    private RejectReason ParseCore(ReadOnlySpan<byte> frame, long ingestTimeUs, ref ParsedFrame result, ref EventFields fields)
    {
        var reader = new Utf8JsonReader(frame, ReaderOptions);
        bool sawResult = false, sawError = false, sawData = false;
        long controlId = -1;
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return RejectReason.NotAnObject;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("data"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.StartObject)
                    {
                        return RejectReason.NotAnObject;
                    }

                    sawData = true;
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        ReadEventField(ref reader, ref fields);
                    }
                }
                else if (reader.ValueTextEquals("result"u8))
                {
                    sawResult = true;
                    reader.Read();
                    reader.Skip();
                }
                else if (reader.ValueTextEquals("error"u8))
                {
                    sawError = true;
                    reader.Read();
                    reader.Skip();
                }
                else if (reader.ValueTextEquals("id"u8) && !sawData && fields.Present == 0)
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var id))
                    {
                        controlId = id;
                    }
                }
                else if (reader.ValueTextEquals("stream"u8))
                {
                    reader.Read();
                    reader.Skip();
                }
                else
                {
                    // A raw (non-combined) stream carries the event's fields at the top level.
                    ReadEventField(ref reader, ref fields);
                }
            }

            // Anything after the closing brace is a malformed frame, not something to ignore.
            if (reader.Read())
            {
                return RejectReason.MalformedJson;
            }
        }
        catch (JsonException)
        {
            return RejectReason.MalformedJson;
        }

        if (fields.Present == 0 && (sawResult || sawError))
        {
            result.Kind = sawError ? FrameKind.ControlError : FrameKind.ControlResult;
            result.ControlId = controlId;
            return RejectReason.None;
        }

        return BuildEvent(ref fields, ingestTimeUs, ref result);
    }

    private RejectReason BuildEvent(ref EventFields f, long ingestTimeUs, ref ParsedFrame result)
    {
        if (!f.Has(Field.EventType))
        {
            return RejectReason.MissingField;
        }

        if (f.EventType.SequenceEqual("bookTicker"u8))
        {
            const int required = Field.EventTime | Field.TransactionTime | Field.Symbol
                | Field.UpdateId | Field.BidPrice | Field.BidQty | Field.AskText | Field.AskQty;
            var check = Resolve(ref f, required, out var symbolId);
            if (check != RejectReason.None)
            {
                return check;
            }

            var r = First(
                First(Decimal(f.BidPrice, true, out var bid), Decimal(f.BidQty, false, out var bidQty)),
                First(Decimal(f.AskText, true, out var ask), Decimal(f.AskQty, false, out var askQty)));
            if (r != RejectReason.None)
            {
                return r;
            }

            if (f.UpdateId < 0 || f.EventTimeMs <= 0 || f.TransactionTimeMs <= 0)
            {
                return RejectReason.NegativeValue;
            }

            result.Kind = FrameKind.BookTicker;
            result.BookTicker = new BookTickerEvent(symbolId, f.UpdateId, f.EventTimeMs, f.TransactionTimeMs, ingestTimeUs, bid, bidQty, ask, askQty);
            return RejectReason.None;
        }

        if (f.EventType.SequenceEqual("aggTrade"u8))
        {
            const int required = Field.EventTime | Field.TransactionTime | Field.Symbol | Field.AggId
                | Field.Price | Field.Qty | Field.FirstId | Field.LastId | Field.Maker;
            var check = Resolve(ref f, required, out var symbolId);
            if (check != RejectReason.None)
            {
                return check;
            }

            var r = First(Decimal(f.Price, true, out var price), Decimal(f.Qty, false, out var qty));
            if (r != RejectReason.None)
            {
                return r;
            }

            if (f.AggId < 0 || f.FirstId < 0 || f.LastId < f.FirstId || f.EventTimeMs <= 0 || f.TransactionTimeMs <= 0)
            {
                return RejectReason.NegativeValue;
            }

            result.Kind = FrameKind.Trade;
            result.Trade = new TradeEvent(symbolId, f.AggId, f.EventTimeMs, f.TransactionTimeMs, ingestTimeUs, price, qty, f.FirstId, f.LastId, f.Maker);
            return RejectReason.None;
        }

        if (f.EventType.SequenceEqual("depthUpdate"u8))
        {
            const int required = Field.EventTime | Field.TransactionTime | Field.Symbol | Field.FirstUpdateId | Field.UpdateId
                | Field.PrevUpdateId | Field.BidLevels | Field.AskLevels;
            var check = f.Check(required);
            if (check != RejectReason.None)
            {
                return check;
            }

            if (f.LevelError != RejectReason.None)
            {
                return f.LevelError;
            }

            if (!_symbols.TryGetId(f.Symbol, out var symbolId))
            {
                return RejectReason.UnknownSymbol;
            }

            if (f.FirstUpdateId < 0 || f.UpdateId < f.FirstUpdateId || f.PrevUpdateId < -1 || f.EventTimeMs <= 0 || f.TransactionTimeMs <= 0)
            {
                return RejectReason.NegativeValue;
            }

            result.Kind = FrameKind.Depth;
            result.Depth = new DepthEvent(symbolId, f.FirstUpdateId, f.UpdateId, f.PrevUpdateId, f.EventTimeMs, f.TransactionTimeMs, ingestTimeUs,
                f.BidArray!, f.BidCount, f.AskArray!, f.AskCount);
            return RejectReason.None;
        }

        if (f.EventType.SequenceEqual("markPriceUpdate"u8))
        {
            return BuildMarkPrice(ref f, ingestTimeUs, ref result);
        }

        if (f.EventType.SequenceEqual("forceOrder"u8))
        {
            return BuildLiquidation(ref f, ingestTimeUs, ref result);
        }

        return RejectReason.UnknownEvent;
    }

    private RejectReason BuildMarkPrice(ref EventFields f, long ingestTimeUs, ref ParsedFrame result)
    {
        // "T" (next funding time) and "r" are 0 and "" on contracts without funding; both must still be there.
        const int required = Field.EventTime | Field.Symbol | Field.Price | Field.IndexPrice | Field.SettlePrice
            | Field.FundingRate | Field.TransactionTime;
        var check = Resolve(ref f, required, out var symbolId);
        if (check != RejectReason.None)
        {
            return check;
        }

        var r = First(
            First(Decimal(f.Price, true, out var mark), Decimal(f.IndexPrice, false, out var index)),
            First(Decimal(f.SettlePrice, false, out var settle), SignedDecimal(f.FundingRate, out var funding)));
        if (r != RejectReason.None)
        {
            return r;
        }

        if (f.EventTimeMs <= 0 || f.TransactionTimeMs < 0)
        {
            return RejectReason.NegativeValue;
        }

        result.Kind = FrameKind.MarkPrice;
        result.MarkPrice = new MarkPriceEvent(symbolId, f.EventTimeMs, ingestTimeUs, mark, index, settle, funding, f.TransactionTimeMs);
        return RejectReason.None;
    }

    private RejectReason BuildLiquidation(ref EventFields f, long ingestTimeUs, ref ParsedFrame result)
    {
        if (!f.Has(Field.Order))
        {
            return (f.Invalid & Field.Order) != 0 ? RejectReason.WrongType : RejectReason.MissingField;
        }

        const int required = Field.EventTime | Field.Symbol | Field.Side | Field.OrderType | Field.TimeInForce | Field.Qty
            | Field.Price | Field.AvgPrice | Field.Status | Field.LastFilled | Field.Filled | Field.TransactionTime;
        var check = Resolve(ref f, required, out var symbolId);
        if (check != RejectReason.None)
        {
            return check;
        }

        // A liquidation's limit price can be 0 on a market order: only quantities and prices below zero are wrong.
        var r = First(
            First(Decimal(f.Qty, false, out var qty), Decimal(f.Price, false, out var price)),
            First(Decimal(f.AvgPrice, false, out var avg), First(Decimal(f.LastFilled, false, out var last), Decimal(f.Filled, false, out var filled))));
        if (r != RejectReason.None)
        {
            return r;
        }

        if (f.EventTimeMs <= 0 || f.TransactionTimeMs <= 0)
        {
            return RejectReason.NegativeValue;
        }

        string? side = Word(f.Side), type = Word(f.OrderType), tif = Word(f.TimeInForce), status = Word(f.Status);
        if (side is null || type is null || tif is null || status is null)
        {
            return RejectReason.WrongType;
        }

        result.Kind = FrameKind.Liquidation;
        result.Liquidation = new LiquidationEvent(symbolId, f.EventTimeMs, f.TransactionTimeMs, ingestTimeUs, side, type, tif, status,
            qty, price, avg, last, filled);
        return RejectReason.None;
    }

    private static readonly string[] KnownWords =
        ["BUY", "SELL", "LIMIT", "MARKET", "IOC", "GTC", "FOK", "GTX", "GTD", "NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "EXPIRED", "REJECTED"];

    /// <summary>An enum-like exchange word (upper-case letters and '_', at most 32): a shared string for the words
    /// Binance uses today, a new one for a word it adds; null for anything else.</summary>
    internal static string? Word(ReadOnlySpan<byte> utf8)
    {
        if (utf8.IsEmpty || utf8.Length > 32)
        {
            return null;
        }

        foreach (var b in utf8)
        {
            if (b is not ((>= (byte)'A' and <= (byte)'Z') or (byte)'_'))
            {
                return null;
            }
        }

        foreach (var w in KnownWords)
        {
            if (w.Length == utf8.Length && System.Text.Ascii.Equals(utf8, w))
            {
                return w;
            }
        }

        return System.Text.Encoding.ASCII.GetString(utf8);
    }

    /// <summary>A decimal that may be negative (a funding rate); the empty string is "none" (NaN).</summary>
    internal static RejectReason SignedDecimal(ReadOnlySpan<byte> utf8, out double value)
    {
        if (utf8.IsEmpty)
        {
            value = double.NaN;
            return RejectReason.None;
        }

        if (!DecimalText.TryParse(utf8, out value) || !double.IsFinite(value))
        {
            value = 0;
            return RejectReason.InvalidNumber;
        }

        return RejectReason.None;
    }

    /// <summary>The required fields are there with the right types, and the symbol is one we record.</summary>
    private RejectReason Resolve(ref EventFields f, int required, out int symbolId)
    {
        symbolId = 0;
        var check = f.Check(required);
        if (check != RejectReason.None)
        {
            return check;
        }

        return _symbols.TryGetId(f.Symbol, out symbolId) ? RejectReason.None : RejectReason.UnknownSymbol;
    }

    private static RejectReason First(RejectReason a, RejectReason b) => a != RejectReason.None ? a : b;

    /// <summary>
    /// Binance sends decimals as JSON strings ("25.35190000"). The parse is correctly rounded (<see cref="DecimalText"/>),
    /// so the double is the nearest one to the exchange's decimal and its shortest round-trip text is that decimal.
    /// </summary>
    internal static RejectReason Decimal(ReadOnlySpan<byte> utf8, bool strictlyPositive, out double value)
    {
        if (!DecimalText.TryParse(utf8, out value) || !double.IsFinite(value))
        {
            value = 0;
            return RejectReason.InvalidNumber;
        }

        if (value < 0 || (value == 0 && double.IsNegative(value)))
        {
            return RejectReason.NegativeValue;
        }

        return strictlyPositive && value == 0 ? RejectReason.NonPositivePrice : RejectReason.None;
    }

    private static void ReadEventField(ref Utf8JsonReader reader, ref EventFields f)
    {
        var name = reader.HasValueSequence ? default : reader.ValueSpan;
        reader.Read();
        if (name.Length != 1)
        {
            if (name.SequenceEqual("pu"u8))
            {
                f.SetLong(ref reader, Field.PrevUpdateId, ref f.PrevUpdateId);
                return;
            }

            // Unknown and optional fields (such as aggTrade's "nq") are ignored: Binance adds fields without notice.
            reader.Skip();
            return;
        }

        switch (name[0])
        {
            case (byte)'e': f.SetString(ref reader, Field.EventType, ref f.EventType); break;
            case (byte)'i': f.SetString(ref reader, Field.IndexPrice, ref f.IndexPrice); break;
            case (byte)'P': f.SetString(ref reader, Field.SettlePrice, ref f.SettlePrice); break;
            case (byte)'r': f.SetString(ref reader, Field.FundingRate, ref f.FundingRate); break;
            case (byte)'o':
                // forceOrder carries the order as a nested object.
                if (reader.TokenType == JsonTokenType.StartObject && !f.Has(Field.Order))
                {
                    f.Present |= Field.Order;
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        ReadOrderField(ref reader, ref f);
                    }
                }
                else
                {
                    f.Invalid |= Field.Order;
                    reader.Skip();
                }

                break;
            case (byte)'s': f.SetString(ref reader, Field.Symbol, ref f.Symbol); break;
            case (byte)'b':
                // bookTicker's "b" is the best bid; depthUpdate's "b" is the list of changed bid levels.
                if (reader.TokenType == JsonTokenType.StartArray)
                {
                    f.ReadLevels(ref reader, Field.BidLevels, ref f.BidArray, ref f.BidCount);
                }
                else
                {
                    f.SetString(ref reader, Field.BidPrice, ref f.BidPrice);
                }

                break;
            case (byte)'U': f.SetLong(ref reader, Field.FirstUpdateId, ref f.FirstUpdateId); break;
            case (byte)'B': f.SetString(ref reader, Field.BidQty, ref f.BidQty); break;
            case (byte)'A': f.SetString(ref reader, Field.AskQty, ref f.AskQty); break;
            case (byte)'p': f.SetString(ref reader, Field.Price, ref f.Price); break;
            case (byte)'q': f.SetString(ref reader, Field.Qty, ref f.Qty); break;
            case (byte)'E': f.SetLong(ref reader, Field.EventTime, ref f.EventTimeMs); break;
            case (byte)'T': f.SetLong(ref reader, Field.TransactionTime, ref f.TransactionTimeMs); break;
            case (byte)'u': f.SetLong(ref reader, Field.UpdateId, ref f.UpdateId); break;
            case (byte)'f': f.SetLong(ref reader, Field.FirstId, ref f.FirstId); break;
            case (byte)'l': f.SetLong(ref reader, Field.LastId, ref f.LastId); break;
            case (byte)'a':
                // bookTicker's "a" is the best ask (a string); aggTrade's "a" is the aggregate trade id (a number).
                if (reader.TokenType == JsonTokenType.String)
                {
                    f.SetString(ref reader, Field.AskText, ref f.AskText);
                }
                else if (reader.TokenType == JsonTokenType.StartArray)
                {
                    f.ReadLevels(ref reader, Field.AskLevels, ref f.AskArray, ref f.AskCount);
                }
                else
                {
                    f.SetLong(ref reader, Field.AggId, ref f.AggId);
                }

                break;
            case (byte)'m':
                if (reader.TokenType is JsonTokenType.True or JsonTokenType.False)
                {
                    f.Maker = reader.TokenType == JsonTokenType.True;
                    f.Present |= Field.Maker;
                }
                else
                {
                    f.Invalid |= Field.Maker;
                    reader.Skip();
                }

                break;
            default:
                reader.Skip();
                break;
        }
    }

    /// <summary>A field of forceOrder's "o" object. Its one-letter names mean other things than at the top level
    /// ("f" is the time in force, "l" the last filled quantity), so they have their own reader.</summary>
    private static void ReadOrderField(ref Utf8JsonReader reader, ref EventFields f)
    {
        var name = reader.HasValueSequence ? default : reader.ValueSpan;
        reader.Read();
        if (name.SequenceEqual("ap"u8))
        {
            f.SetString(ref reader, Field.AvgPrice, ref f.AvgPrice);
            return;
        }

        if (name.Length != 1)
        {
            reader.Skip();
            return;
        }

        switch (name[0])
        {
            case (byte)'s': f.SetString(ref reader, Field.Symbol, ref f.Symbol); break;
            case (byte)'S': f.SetString(ref reader, Field.Side, ref f.Side); break;
            case (byte)'o': f.SetString(ref reader, Field.OrderType, ref f.OrderType); break;
            case (byte)'f': f.SetString(ref reader, Field.TimeInForce, ref f.TimeInForce); break;
            case (byte)'q': f.SetString(ref reader, Field.Qty, ref f.Qty); break;
            case (byte)'p': f.SetString(ref reader, Field.Price, ref f.Price); break;
            case (byte)'X': f.SetString(ref reader, Field.Status, ref f.Status); break;
            case (byte)'l': f.SetString(ref reader, Field.LastFilled, ref f.LastFilled); break;
            case (byte)'z': f.SetString(ref reader, Field.Filled, ref f.Filled); break;
            case (byte)'T': f.SetLong(ref reader, Field.TransactionTime, ref f.TransactionTimeMs); break;
            default: reader.Skip(); break;
        }
    }

    /// <summary>One bit per field, for "present" and "invalid" sets.</summary>
    private static class Field
    {
        public const int EventType = 1 << 0, EventTime = 1 << 1, TransactionTime = 1 << 2, Symbol = 1 << 3, UpdateId = 1 << 4,
            BidPrice = 1 << 5, BidQty = 1 << 6, AskText = 1 << 7, AskQty = 1 << 8, AggId = 1 << 9, Price = 1 << 10,
            Qty = 1 << 11, FirstId = 1 << 12, LastId = 1 << 13, Maker = 1 << 14, BidLevels = 1 << 15, AskLevels = 1 << 16,
            FirstUpdateId = 1 << 17, PrevUpdateId = 1 << 18, IndexPrice = 1 << 19, SettlePrice = 1 << 20, FundingRate = 1 << 21,
            Order = 1 << 22, Side = 1 << 23, OrderType = 1 << 24, TimeInForce = 1 << 25, AvgPrice = 1 << 26, Status = 1 << 27,
            LastFilled = 1 << 28, Filled = 1 << 29;
    }

    private ref struct EventFields
    {
        public int Present;
        public int Invalid;
        public int Overflow;
        public ReadOnlySpan<byte> EventType;
        public ReadOnlySpan<byte> Symbol;
        public ReadOnlySpan<byte> BidPrice, BidQty, AskText, AskQty, Price, Qty;
        public ReadOnlySpan<byte> IndexPrice, SettlePrice, FundingRate, Side, OrderType, TimeInForce, AvgPrice, Status, LastFilled, Filled;
        public long EventTimeMs, TransactionTimeMs, UpdateId, AggId, FirstId, LastId, FirstUpdateId, PrevUpdateId;
        public bool Maker;
        public double[]? BidArray, AskArray;
        public int BidCount, AskCount;
        public RejectReason LevelError;

        public void ReleaseLevels()
        {
            if (BidArray is not null)
            {
                ArrayPool<double>.Shared.Return(BidArray);
                BidArray = null;
            }

            if (AskArray is not null)
            {
                ArrayPool<double>.Shared.Return(AskArray);
                AskArray = null;
            }
        }

        /// <summary>[["price","qty"], ...] into a pooled array, price and quantity interleaved.</summary>
        public void ReadLevels(ref Utf8JsonReader reader, int field, ref double[]? target, ref int count)
        {
            if (target is not null)
            {
                // The same list twice in one frame: not Binance's shape.
                Invalid |= field;
                reader.Skip();
                return;
            }

            target = ArrayPool<double>.Shared.Rent(64);
            count = 0;
            Present |= field;
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                if (reader.TokenType != JsonTokenType.StartArray)
                {
                    Fail(RejectReason.WrongType);
                    reader.Skip();
                    continue;
                }

                ReadOnlySpan<byte> price = default, qty = default;
                var strings = 0;
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType != JsonTokenType.String || reader.ValueIsEscaped || reader.HasValueSequence)
                    {
                        Fail(RejectReason.WrongType);
                        reader.Skip();
                        continue;
                    }

                    if (strings == 0)
                    {
                        price = reader.ValueSpan;
                    }
                    else if (strings == 1)
                    {
                        qty = reader.ValueSpan;
                    }

                    strings++;
                }

                if (strings != 2)
                {
                    Fail(RejectReason.WrongType);
                    continue;
                }

                var r = Decimal(price, strictlyPositive: true, out var p);
                if (r == RejectReason.None)
                {
                    // A quantity of 0 removes the level: allowed here, unlike a price of 0.
                    r = Decimal(qty, strictlyPositive: false, out var q);
                    if (r == RejectReason.None)
                    {
                        if ((count + 1) * 2 > target.Length)
                        {
                            PooledArrays.Grow(ref target, target.Length * 2, count * 2);
                        }

                        target[count * 2] = p;
                        target[(count * 2) + 1] = q;
                        count++;
                        continue;
                    }
                }

                Fail(r);
            }
        }

        private void Fail(RejectReason reason)
        {
            if (LevelError == RejectReason.None)
            {
                LevelError = reason;
            }
        }

        public readonly bool Has(int field) => (Present & field) != 0;

        /// <summary>Type errors and missing fields are judged only once the event type says which fields count.</summary>
        public readonly RejectReason Check(int required)
        {
            if ((Invalid & required) != 0)
            {
                return (Overflow & required) != 0 ? RejectReason.InvalidNumber : RejectReason.WrongType;
            }

            return (Present & required) == required ? RejectReason.None : RejectReason.MissingField;
        }

        public void SetString(ref Utf8JsonReader reader, int field, ref ReadOnlySpan<byte> target)
        {
            // Binance never escapes these values; an escaped or multi-segment value is not trusted.
            if (reader.TokenType == JsonTokenType.String && !reader.ValueIsEscaped && !reader.HasValueSequence)
            {
                target = reader.ValueSpan;
                Present |= field;
            }
            else
            {
                Invalid |= field;
                reader.Skip();
            }
        }

        public void SetLong(ref Utf8JsonReader reader, int field, ref long target)
        {
            if (reader.TokenType != JsonTokenType.Number)
            {
                Invalid |= field;
                reader.Skip();
            }
            else if (reader.TryGetInt64(out target))
            {
                Present |= field;
            }
            else
            {
                // A number that is fractional or beyond 64 bits.
                Invalid |= field;
                Overflow |= field;
            }
        }
    }
}
