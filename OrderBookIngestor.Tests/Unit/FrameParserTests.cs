using OrderBookIngestor.Exchange;
using OrderBookIngestor.Pipeline;
using OrderBookIngestor.Tests.Support;

namespace OrderBookIngestor.Tests.Unit;

public sealed class FrameParserTests
{
    private const long IngestUs = 1_700_000_000_123_456;
    private static readonly SymbolTable Symbols = new(new Dictionary<string, int> { ["BNBUSDT"] = 3, ["BTCUSDT"] = 1 });
    private readonly FrameParser _parser = new(Symbols);

    private FrameKind Parse(string frame, out ParsedFrame result) => _parser.Parse(Frames.Utf8(frame), IngestUs, out result);

    [Test]
    public void BookTicker_CombinedFrame_YieldsEveryField()
    {
        Assert.That(Parse(Frames.BookTickerCombined, out var r), Is.EqualTo(FrameKind.BookTicker));
        Assert.That(r.BookTicker, Is.EqualTo(new BookTickerEvent(3, 400900217, 1568014460893, 1568014460891, IngestUs, 25.3519, 31.21, 25.3652, 40.66)));
    }

    [Test]
    public void BookTicker_RawFrame_YieldsTheSameEventAsCombined()
    {
        Parse(Frames.BookTickerCombined, out var combined);
        Assert.That(Parse(Frames.BookTickerRaw, out var raw), Is.EqualTo(FrameKind.BookTicker));
        Assert.That(raw.BookTicker, Is.EqualTo(combined.BookTicker));
    }

    [Test]
    public void AggTrade_CombinedFrame_YieldsEveryField()
    {
        Assert.That(Parse(Frames.AggTradeCombined, out var r), Is.EqualTo(FrameKind.Trade));
        Assert.That(r.Trade, Is.EqualTo(new TradeEvent(1, 5933014, 123456789, 123456785, IngestUs, 0.001, 100, 100, 105, true)));
    }

    [Test]
    public void AggTrade_FieldsInAnyOrderWithUnknownFields_StillParse()
    {
        const string frame = """{"data":{"m":false,"T":123456785,"nq":"99","x":{"nested":[1,2,{"a":"b"}]},"l":105,"f":100,"q":"100","p":"0.001","a":5933014,"s":"BTCUSDT","E":123456789,"e":"aggTrade","future":null},"stream":"btcusdt@aggTrade"}""";
        Assert.That(Parse(frame, out var r), Is.EqualTo(FrameKind.Trade));
        Assert.That(r.Trade.IsBuyerMaker, Is.False);
        Assert.That(r.Trade.AggTradeId, Is.EqualTo(5933014));
    }

    [Test]
    public void SubscribeReply_IsAControlResultWithItsId()
    {
        Assert.That(Parse("""{"result":null,"id":7}""", out var r), Is.EqualTo(FrameKind.ControlResult));
        Assert.That(r.ControlId, Is.EqualTo(7));
    }

    [Test]
    public void ErrorReply_IsAControlError()
    {
        Assert.That(Parse("""{"error":{"code":2,"msg":"Invalid request"},"id":9}""", out var r), Is.EqualTo(FrameKind.ControlError));
        Assert.That(r.ControlId, Is.EqualTo(9));
    }

    [TestCase("", RejectReason.MalformedJson)]
    [TestCase("[]", RejectReason.NotAnObject)]
    [TestCase("42", RejectReason.NotAnObject)]
    [TestCase("{\"e\":\"bookTicker\",\"u\":1", RejectReason.MalformedJson)]
    [TestCase("{\"e\":\"bookTicker\"} trailing", RejectReason.MalformedJson)]
    [TestCase("{\"e\":\"bookTicker\"}{}", RejectReason.MalformedJson)]
    [TestCase("{'e':'bookTicker'}", RejectReason.MalformedJson)]
    [TestCase("{\"stream\":\"x\",\"data\":[1]}", RejectReason.NotAnObject)]
    [TestCase("{}", RejectReason.MissingField)]
    [TestCase("{\"e\":\"bookTicker\",\"u\":1,\"E\":2,\"T\":3,\"s\":\"BNBUSDT\",\"b\":\"1\",\"B\":\"1\",\"a\":\"2\"}", RejectReason.MissingField)]
    [TestCase("{\"e\":\"bookTicker\",\"u\":\"1\",\"E\":2,\"T\":3,\"s\":\"BNBUSDT\",\"b\":\"1\",\"B\":\"1\",\"a\":\"2\",\"A\":\"1\"}", RejectReason.WrongType)]
    [TestCase("{\"e\":\"bookTicker\",\"u\":1,\"E\":2,\"T\":3,\"s\":\"BNBUSDT\",\"b\":1.5,\"B\":\"1\",\"a\":\"2\",\"A\":\"1\"}", RejectReason.WrongType)]
    [TestCase("{\"e\":\"bookTicker\",\"u\":1.5,\"E\":2,\"T\":3,\"s\":\"BNBUSDT\",\"b\":\"1\",\"B\":\"1\",\"a\":\"2\",\"A\":\"1\"}", RejectReason.InvalidNumber)]
    [TestCase("{\"e\":\"bookTicker\",\"u\":99999999999999999999,\"E\":2,\"T\":3,\"s\":\"BNBUSDT\",\"b\":\"1\",\"B\":\"1\",\"a\":\"2\",\"A\":\"1\"}", RejectReason.InvalidNumber)]
    [TestCase("{\"e\":\"bookTicker\",\"u\":1,\"E\":2,\"T\":3,\"s\":\"BNBUSDT\",\"b\":\"NaN\",\"B\":\"1\",\"a\":\"2\",\"A\":\"1\"}", RejectReason.InvalidNumber)]
    [TestCase("{\"e\":\"bookTicker\",\"u\":1,\"E\":2,\"T\":3,\"s\":\"BNBUSDT\",\"b\":\"Infinity\",\"B\":\"1\",\"a\":\"2\",\"A\":\"1\"}", RejectReason.InvalidNumber)]
    [TestCase("{\"e\":\"bookTicker\",\"u\":1,\"E\":2,\"T\":3,\"s\":\"BNBUSDT\",\"b\":\"1e5\",\"B\":\"1\",\"a\":\"2\",\"A\":\"1\"}", RejectReason.InvalidNumber)]
    [TestCase("{\"e\":\"bookTicker\",\"u\":1,\"E\":2,\"T\":3,\"s\":\"BNBUSDT\",\"b\":\"\",\"B\":\"1\",\"a\":\"2\",\"A\":\"1\"}", RejectReason.InvalidNumber)]
    [TestCase("{\"e\":\"bookTicker\",\"u\":1,\"E\":2,\"T\":3,\"s\":\"BNBUSDT\",\"b\":\" 1\",\"B\":\"1\",\"a\":\"2\",\"A\":\"1\"}", RejectReason.InvalidNumber)]
    [TestCase("{\"e\":\"bookTicker\",\"u\":1,\"E\":2,\"T\":3,\"s\":\"BNBUSDT\",\"b\":\"0\",\"B\":\"1\",\"a\":\"2\",\"A\":\"1\"}", RejectReason.NonPositivePrice)]
    [TestCase("{\"e\":\"bookTicker\",\"u\":1,\"E\":2,\"T\":3,\"s\":\"BNBUSDT\",\"b\":\"1\",\"B\":\"-1\",\"a\":\"2\",\"A\":\"1\"}", RejectReason.NegativeValue)]
    [TestCase("{\"e\":\"bookTicker\",\"u\":1,\"E\":2,\"T\":3,\"s\":\"BNBUSDT\",\"b\":\"1\",\"B\":\"-0\",\"a\":\"2\",\"A\":\"1\"}", RejectReason.NegativeValue)]
    [TestCase("{\"e\":\"bookTicker\",\"u\":-1,\"E\":2,\"T\":3,\"s\":\"BNBUSDT\",\"b\":\"1\",\"B\":\"1\",\"a\":\"2\",\"A\":\"1\"}", RejectReason.NegativeValue)]
    [TestCase("{\"e\":\"bookTicker\",\"u\":1,\"E\":2,\"T\":3,\"s\":\"XYZUSDT\",\"b\":\"1\",\"B\":\"1\",\"a\":\"2\",\"A\":\"1\"}", RejectReason.UnknownSymbol)]
    [TestCase("{\"e\":\"bookTicker\",\"u\":1,\"E\":2,\"T\":3,\"s\":\"bnbusdt\",\"b\":\"1\",\"B\":\"1\",\"a\":\"2\",\"A\":\"1\"}", RejectReason.UnknownSymbol)]
    [TestCase("{\"e\":\"bookTicker\",\"u\":1,\"E\":2,\"T\":3,\"s\":\"BNB\\u0055SDT\",\"b\":\"1\",\"B\":\"1\",\"a\":\"2\",\"A\":\"1\"}", RejectReason.WrongType)]
    [TestCase("{\"e\":\"markPriceUpdate\",\"E\":1,\"s\":\"BTCUSDT\",\"p\":\"1\"}", RejectReason.MissingField)]
    [TestCase("{\"e\":\"kline\",\"E\":1,\"s\":\"BTCUSDT\"}", RejectReason.UnknownEvent)]
    [TestCase("{\"e\":\"kline\",\"E\":1,\"s\":\"BTCUSDT\",\"k\":{}}", RejectReason.UnknownEvent)]
    [TestCase("{\"e\":\"aggTrade\",\"E\":1,\"s\":\"BTCUSDT\",\"a\":1,\"p\":\"1\",\"q\":\"1\",\"f\":5,\"l\":4,\"T\":1,\"m\":true}", RejectReason.NegativeValue)]
    [TestCase("{\"e\":\"aggTrade\",\"E\":1,\"s\":\"BTCUSDT\",\"a\":1,\"p\":\"1\",\"q\":\"1\",\"f\":1,\"l\":4,\"T\":1,\"m\":\"true\"}", RejectReason.WrongType)]
    [TestCase("{\"e\":\"aggTrade\",\"E\":1,\"s\":\"BTCUSDT\",\"a\":\"1\",\"p\":\"1\",\"q\":\"1\",\"f\":1,\"l\":4,\"T\":1,\"m\":true}", RejectReason.MissingField)]
    public void MalformedFrame_IsRejectedWithItsReason(string frame, RejectReason expected)
    {
        Assert.That(Parse(frame, out var r), Is.EqualTo(FrameKind.Rejected));
        Assert.That(r.Reason, Is.EqualTo(expected));
    }

    [Test]
    public void InvalidUtf8_IsRejectedNotThrown()
    {
        // In an ignored property name: no event type was found.
        byte[] frame = [(byte)'{', (byte)'"', 0xC3, 0x28, (byte)'"', (byte)':', (byte)'1', (byte)'}'];
        Assert.That(_parser.Parse(frame, IngestUs, out var r), Is.EqualTo(FrameKind.Rejected));
        Assert.That(r.Reason, Is.EqualTo(RejectReason.MissingField));

        // In the symbol, the one string that selects where a row goes: never matches a registered symbol.
        var text = Frames.Utf8(Frames.BookTickerRaw.Replace("BNBUSDT", "BNB##SDT", StringComparison.Ordinal));
        var at = Array.IndexOf(text, (byte)'#');
        text[at] = 0xC3;
        text[at + 1] = 0x28;
        Assert.That(_parser.Parse(text, IngestUs, out r), Is.EqualTo(FrameKind.Rejected));
        Assert.That(r.Reason, Is.EqualTo(RejectReason.UnknownSymbol));
    }

    [Test]
    public void DeeplyNestedUnknownField_IsRejectedNotThrown()
    {
        var frame = "{\"x\":" + new string('[', 100) + new string(']', 100) + "}";
        Assert.That(Parse(frame, out var r), Is.EqualTo(FrameKind.Rejected));
        Assert.That(r.Reason, Is.EqualTo(RejectReason.MalformedJson));
    }

    [Test]
    public void SteadyStateParsing_AllocatesNothing()
    {
        var bookTicker = Frames.Utf8(Frames.BookTickerCombined);
        var trade = Frames.Utf8(Frames.AggTradeCombined);
        for (var i = 0; i < 1000; i++)
        {
            _parser.Parse(bookTicker, IngestUs, out _);
            _parser.Parse(trade, IngestUs, out _);
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            _parser.Parse(bookTicker, IngestUs, out _);
            _parser.Parse(trade, IngestUs, out _);
        }

        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.Zero);
    }
}
