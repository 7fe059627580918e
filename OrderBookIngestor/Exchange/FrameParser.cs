// Longer than ~400 lines on purpose: one allocation-free Utf8JsonReader pass per frame kind, sharing the reader
// state and the field helpers, which would otherwise have to be made public to be split across files.
using System.Buffers;
using System.Text.Json;

namespace OrderBookIngestor.Exchange;

/// <summary>
/// Turns one WebSocket text frame from Binance (raw or combined-stream form) into a typed event without
/// allocating: one reader walks the received bytes once (the flat scanner in FrameParser.Flat.cs for the hot
/// frames, Utf8JsonReader for the rest), values are parsed from their UTF-8 spans, and the symbol is looked up
/// from its bytes. A frame that does not yield a complete, valid event is rejected with a reason; no field is
/// ever defaulted.
/// </summary>
public sealed partial class FrameParser
{
    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 16 };

    private readonly SymbolTable _symbols;
    private readonly bool _scanFlat;

    public FrameParser(SymbolTable symbols)
        : this(symbols, scanFlat: true)
    {
    }

    /// <param name="scanFlat">False sends every frame through Utf8JsonReader (tests compare the two readers).</param>
    internal FrameParser(SymbolTable symbols, bool scanFlat)
    {
        _symbols = symbols;
        _scanFlat = scanFlat;
    }

    /// <summary>Frames read by the flat scanner rather than Utf8JsonReader.</summary>
    internal long FlatFrames { get; private set; }

    public FrameKind Parse(ReadOnlySpan<byte> frame, long ingestTimeUs, out ParsedFrame result)
    {
        result = default;
        var fields = new EventFields();
        if (_scanFlat && TryScanFlat(frame, ref fields))
        {
            FlatFrames++;
            result.Reason = BuildEvent(ref fields, ingestTimeUs, ref result);
        }
        else
        {
            fields = new EventFields();
            result.Reason = ParseCore(frame, ingestTimeUs, ref result, ref fields);
        }

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
        if (name.Length == 1)
        {
            switch (name[0])
            {
                case (byte)'o' when reader.TokenType == JsonTokenType.StartObject && !f.Has(Field.Order):
                    // forceOrder carries the order as a nested object.
                    f.Present |= Field.Order;
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        ReadOrderField(ref reader, ref f);
                    }

                    return;
                case (byte)'b' when reader.TokenType == JsonTokenType.StartArray:
                    // depthUpdate's "b" is the list of changed bid levels (bookTicker's is the best bid).
                    f.ReadLevels(ref reader, Field.BidLevels, ref f.BidArray, ref f.BidCount);
                    return;
                case (byte)'a' when reader.TokenType == JsonTokenType.StartArray:
                    f.ReadLevels(ref reader, Field.AskLevels, ref f.AskArray, ref f.AskCount);
                    return;
            }
        }

        f.Take(name, Scalar.Read(ref reader));
        reader.Skip();
    }

    /// <summary>A field of forceOrder's "o" object. Its one-letter names mean other things than at the top level
    /// ("f" is the time in force, "l" the last filled quantity), so they have their own reader.</summary>
    private static void ReadOrderField(ref Utf8JsonReader reader, ref EventFields f)
    {
        var name = reader.HasValueSequence ? default : reader.ValueSpan;
        reader.Read();
        var value = Scalar.Read(ref reader);
        reader.Skip();
        if (name.SequenceEqual("ap"u8))
        {
            f.SetString(value, Field.AvgPrice, ref f.AvgPrice);
            return;
        }

        if (name.Length != 1)
        {
            return;
        }

        switch (name[0])
        {
            case (byte)'s': f.SetString(value, Field.Symbol, ref f.Symbol); break;
            case (byte)'S': f.SetString(value, Field.Side, ref f.Side); break;
            case (byte)'o': f.SetString(value, Field.OrderType, ref f.OrderType); break;
            case (byte)'f': f.SetString(value, Field.TimeInForce, ref f.TimeInForce); break;
            case (byte)'q': f.SetString(value, Field.Qty, ref f.Qty); break;
            case (byte)'p': f.SetString(value, Field.Price, ref f.Price); break;
            case (byte)'X': f.SetString(value, Field.Status, ref f.Status); break;
            case (byte)'l': f.SetString(value, Field.LastFilled, ref f.LastFilled); break;
            case (byte)'z': f.SetString(value, Field.Filled, ref f.Filled); break;
            case (byte)'T': f.SetLong(value, Field.TransactionTime, ref f.TransactionTimeMs); break;
        }
    }

    private enum ScalarKind : byte
    {
        /// <summary>A string Binance would send: not escaped, in one piece.</summary>
        Text,

        /// <summary>A string that is escaped or split: not trusted.</summary>
        OtherText,
        Integer,

        /// <summary>A number with a fraction, an exponent, or beyond 64 bits.</summary>
        OtherNumber,
        True,
        False,

        /// <summary>null, an object or a list.</summary>
        Other,
    }

    /// <summary>One field's value as the field table (<see cref="EventFields.Take"/>) sees it, from either reader.</summary>
    private readonly ref struct Scalar(ScalarKind kind, ReadOnlySpan<byte> text = default, long integer = 0)
    {
        public readonly ScalarKind Kind = kind;
        public readonly ReadOnlySpan<byte> Text = text;
        public readonly long Integer = integer;

        public static Scalar Read(scoped ref Utf8JsonReader reader) => reader.TokenType switch
        {
            JsonTokenType.String when !reader.ValueIsEscaped && !reader.HasValueSequence => new(ScalarKind.Text, reader.ValueSpan),
            JsonTokenType.String => new(ScalarKind.OtherText),
            JsonTokenType.Number => reader.TryGetInt64(out var n) ? new(ScalarKind.Integer, integer: n) : new(ScalarKind.OtherNumber),
            JsonTokenType.True => new(ScalarKind.True),
            JsonTokenType.False => new(ScalarKind.False),
            _ => new(ScalarKind.Other),
        };
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

        /// <summary>The one table of a frame's fields: which field a name is, and which values it takes. An unknown
        /// name is ignored (Binance adds fields without notice, such as aggTrade's "nq"); a known one with a value of the
        /// wrong kind is marked invalid, and judged once the event type says whether it counts.</summary>
        public void Take(ReadOnlySpan<byte> name, Scalar value)
        {
            if (name.Length != 1)
            {
                if (name.SequenceEqual("pu"u8))
                {
                    SetLong(value, Field.PrevUpdateId, ref PrevUpdateId);
                }

                return;
            }

            switch (name[0])
            {
                case (byte)'e': SetString(value, Field.EventType, ref EventType); break;
                case (byte)'i': SetString(value, Field.IndexPrice, ref IndexPrice); break;
                case (byte)'P': SetString(value, Field.SettlePrice, ref SettlePrice); break;
                case (byte)'r': SetString(value, Field.FundingRate, ref FundingRate); break;
                case (byte)'o': Invalid |= Field.Order; break;
                case (byte)'s': SetString(value, Field.Symbol, ref Symbol); break;
                case (byte)'b': SetString(value, Field.BidPrice, ref BidPrice); break;
                case (byte)'U': SetLong(value, Field.FirstUpdateId, ref FirstUpdateId); break;
                case (byte)'B': SetString(value, Field.BidQty, ref BidQty); break;
                case (byte)'A': SetString(value, Field.AskQty, ref AskQty); break;
                case (byte)'p': SetString(value, Field.Price, ref Price); break;
                case (byte)'q': SetString(value, Field.Qty, ref Qty); break;
                case (byte)'E': SetLong(value, Field.EventTime, ref EventTimeMs); break;
                case (byte)'T': SetLong(value, Field.TransactionTime, ref TransactionTimeMs); break;
                case (byte)'u': SetLong(value, Field.UpdateId, ref UpdateId); break;
                case (byte)'f': SetLong(value, Field.FirstId, ref FirstId); break;
                case (byte)'l': SetLong(value, Field.LastId, ref LastId); break;
                case (byte)'a':
                    // bookTicker's "a" is the best ask (a string); aggTrade's "a" is the aggregate trade id (a number).
                    if (value.Kind is ScalarKind.Text or ScalarKind.OtherText)
                    {
                        SetString(value, Field.AskText, ref AskText);
                    }
                    else
                    {
                        SetLong(value, Field.AggId, ref AggId);
                    }

                    break;
                case (byte)'m':
                    if (value.Kind is ScalarKind.True or ScalarKind.False)
                    {
                        Maker = value.Kind == ScalarKind.True;
                        Present |= Field.Maker;
                    }
                    else
                    {
                        Invalid |= Field.Maker;
                    }

                    break;
            }
        }

        public void SetString(Scalar value, int field, ref ReadOnlySpan<byte> target)
        {
            // Binance never escapes these values; an escaped or multi-segment value is not trusted.
            if (value.Kind == ScalarKind.Text)
            {
                target = value.Text;
                Present |= field;
            }
            else
            {
                Invalid |= field;
            }
        }

        public void SetLong(Scalar value, int field, ref long target)
        {
            if (value.Kind == ScalarKind.Integer)
            {
                target = value.Integer;
                Present |= field;
            }
            else
            {
                // A fractional number or one beyond 64 bits is a bad number; anything else is the wrong type.
                Invalid |= field;
                if (value.Kind == ScalarKind.OtherNumber)
                {
                    Overflow |= field;
                }
            }
        }
    }
}
