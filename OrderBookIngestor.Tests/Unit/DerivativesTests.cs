using OrderBookIngestor.Exchange;
using OrderBookIngestor.Pipeline;
using OrderBookIngestor.Tests.Support;

namespace OrderBookIngestor.Tests.Unit;

/// <summary>markPriceUpdate and forceOrder frames, the open interest answer, and the sequencing of the two streams.</summary>
public sealed class DerivativesTests
{
    private const long IngestUs = 1_700_000_000_123_456;
    private static readonly SymbolTable Symbols = new(new Dictionary<string, int> { ["BTCUSDT"] = 1, ["BTCUSDT_260327"] = 2 });
    private readonly FrameParser _parser = new(Symbols);

    private FrameKind Parse(string frame, out ParsedFrame result) => _parser.Parse(Frames.Utf8(frame), IngestUs, out result);

    [Test]
    public void MarkPrice_DocumentationFrame_YieldsEveryField()
    {
        const string frame = """{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000","i":"11784.62659091","P":"11784.25641265","r":"-0.00038167","T":1562306400000,"ap":"11790.1"}}""";
        Assert.That(Parse(frame, out var r), Is.EqualTo(FrameKind.MarkPrice));
        Assert.That(r.MarkPrice, Is.EqualTo(new MarkPriceEvent(1, 1562305380000, IngestUs, 11794.15, 11784.62659091, 11784.25641265, -0.00038167, 1562306400000)));
    }

    [Test]
    public void MarkPrice_OfAContractWithoutFunding_HasNoRateAndNoNextTime()
    {
        const string frame = """{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT_260327","p":"11794.1","i":"11784.6","P":"11784.2","r":"","T":0}""";
        Assert.That(Parse(frame, out var r), Is.EqualTo(FrameKind.MarkPrice));
        Assert.That((double.IsNaN(r.MarkPrice.FundingRate), r.MarkPrice.NextFundingTimeMs), Is.EqualTo((true, 0L)));
    }

    [TestCase("""{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"1","i":"1","P":"1","T":0}""", RejectReason.MissingField)]
    [TestCase("""{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"0","i":"1","P":"1","r":"0","T":0}""", RejectReason.NonPositivePrice)]
    [TestCase("""{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"1","i":"-1","P":"1","r":"0","T":0}""", RejectReason.NegativeValue)]
    [TestCase("""{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"1","i":"1","P":"1","r":"abc","T":0}""", RejectReason.InvalidNumber)]
    [TestCase("""{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"1","i":"1","P":"1","r":0.1,"T":0}""", RejectReason.WrongType)]
    [TestCase("""{"e":"markPriceUpdate","E":1,"s":"XRPUSDT","p":"1","i":"1","P":"1","r":"0","T":0}""", RejectReason.UnknownSymbol)]
    [TestCase("""{"e":"forceOrder","E":1}""", RejectReason.MissingField)]
    [TestCase("""{"e":"forceOrder","E":1,"o":"SELL"}""", RejectReason.WrongType)]
    [TestCase("""{"e":"forceOrder","E":5,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC","q":"1","p":"2","X":"FILLED","l":"1","z":"1","T":4}}""", RejectReason.MissingField)]
    [TestCase("""{"e":"forceOrder","E":5,"o":{"s":"BTCUSDT","S":"sell","o":"LIMIT","f":"IOC","q":"1","p":"2","ap":"2","X":"FILLED","l":"1","z":"1","T":4}}""", RejectReason.WrongType)]
    [TestCase("""{"e":"forceOrder","E":5,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC","q":"-1","p":"2","ap":"2","X":"FILLED","l":"1","z":"1","T":4}}""", RejectReason.NegativeValue)]
    [TestCase("""{"e":"forceOrder","E":5,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC","q":"1","p":"2","ap":"2","X":"FILLED","l":"1","z":"1","T":0}}""", RejectReason.NegativeValue)]
    public void BadDerivativesFrame_IsRejectedWithItsReason(string frame, RejectReason reason)
    {
        Assert.That(Parse(frame, out var r), Is.EqualTo(FrameKind.Rejected));
        Assert.That(r.Reason, Is.EqualTo(reason));
    }

    [Test]
    public void ForceOrder_DocumentationFrame_YieldsEveryField_WithSharedWords()
    {
        const string frame = """{"stream":"btcusdt@forceOrder","data":{"e":"forceOrder","E":1568014460893,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC","q":"0.014","p":"9910","ap":"9910","X":"FILLED","l":"0.014","z":"0.014","T":1568014460893,"new":{"x":1}}}}""";
        Assert.That(Parse(frame, out var r), Is.EqualTo(FrameKind.Liquidation));
        Assert.That(r.Liquidation, Is.EqualTo(new LiquidationEvent(1, 1568014460893, 1568014460893, IngestUs, "SELL", "LIMIT", "IOC", "FILLED", 0.014, 9910, 9910, 0.014, 0.014)));
        Assert.That(ReferenceEquals(r.Liquidation.Side, FrameParser.Word("SELL"u8)), Is.True, "known words do not allocate");
    }

    [Test]
    public void ForceOrder_WithAWordBinanceAddsLater_IsKeptAsSent()
    {
        const string frame = """{"e":"forceOrder","E":2,"o":{"s":"BTCUSDT","S":"BUY","o":"LIMIT","f":"IOC","q":"1","p":"0","ap":"0","X":"NEW_ADL","l":"0","z":"0","T":1}}""";
        Assert.That(Parse(frame, out var r), Is.EqualTo(FrameKind.Liquidation));
        Assert.That((r.Liquidation.Status, r.Liquidation.Price), Is.EqualTo(("NEW_ADL", 0.0)));
    }

    [Test]
    public void OpenInterestAnswer_IsParsed_AndABadOneIsAClearError()
    {
        var row = BinanceRestClient.ParseOpenInterest("""{"openInterest":"10659.509","symbol":"BTCUSDT","time":1589437530011}"""u8, 1, 42);
        Assert.That(row, Is.EqualTo(new OpenInterestRow(1, 1589437530011, 42, 10659.509)));
        var bad = Assert.Throws<System.Text.Json.JsonException>(() => BinanceRestClient.ParseOpenInterest("""{"openInterest":"-1","time":1}"""u8, 1, 42));
        Assert.That(bad!.Message, Does.Contain("openInterest"));
        Assert.Throws<System.Text.Json.JsonException>(() => BinanceRestClient.ParseOpenInterest("""{"symbol":"BTCUSDT","time":1}"""u8, 1, 42));
    }

    [Test]
    public void MarkPriceSequence_DropsRepeats_AndWritesDownMissedSecondsAndDisconnects()
    {
        var s = new SecondSequence(1, "btcusdt@markPrice@1s", lastStoredTimeMs: 0);
        Assert.That(s.Offer(10_000, 99, out var gap), Is.True);
        Assert.That(gap, Is.Null);
        Assert.That(s.Offer(11_003, 99, out gap), Is.True, "a few ms of jitter is not a hole");
        Assert.That(gap, Is.Null);
        Assert.That(s.Offer(11_003, 99, out _), Is.False, "rotation overlap repeats an event");
        Assert.That(s.Offer(10_500, 99, out _), Is.False, "an older event is not new");

        Assert.That(s.Offer(14_001, 99, out gap), Is.True);
        Assert.That(gap, Is.EqualTo(new GapRecord(1, "btcusdt@markPrice@1s", 11_004, 14_000, null, null, GapReason.MissedSeconds, 99, "2 s without an event while connected")));

        s.Interrupt();
        Assert.That(s.Offer(20_000, 100, out gap), Is.True);
        Assert.That((gap!.Reason, gap.StartMs, gap.EndMs), Is.EqualTo((GapReason.Disconnected, 14_002L, 19_999L)));
        Assert.That(s.Offer(21_000, 100, out gap), Is.True);
        Assert.That(gap, Is.Null, "the interruption is closed once");
    }

    [Test]
    public void MarkPriceSequence_AfterARestart_DatesTheDaemonsDowntime()
    {
        var s = new SecondSequence(1, "btcusdt@markPrice@1s", lastStoredTimeMs: 50_000);
        Assert.That(s.Offer(50_000, 1, out _), Is.False, "already stored");
        Assert.That(s.Offer(90_000, 1, out var gap), Is.True);
        Assert.That((gap!.Reason, gap.StartMs, gap.EndMs), Is.EqualTo((GapReason.DaemonDown, 50_001L, 89_999L)));
    }

    [Test]
    public void LiquidationStream_HoleIsDatedByTheConnection_NotByTheNextLiquidation()
    {
        var s = new SparseStreamState(1, "btcusdt@forceOrder");
        Assert.That(s.Resume(1_000), Is.Null, "a first subscription is no hole");
        Assert.That(s.Offer(500, 1_000), Is.EqualTo(RecentIdSequence.Decision.Accept));
        Assert.That(s.Offer(500, 1_000), Is.EqualTo(RecentIdSequence.Decision.Duplicate));
        s.Interrupt(2_000);
        s.Interrupt(2_500);
        Assert.That(s.Resume(3_000), Is.EqualTo(new GapRecord(1, "btcusdt@forceOrder", 2_000, 3_000, null, null, GapReason.Disconnected, 3_000, "no connection carried the stream")));
        Assert.That(s.Resume(4_000), Is.Null);
    }

    [Test]
    public void Channels_MarkPriceAndForceOrderAreMarketStreams_OpenInterestIsAPoll()
    {
        Assert.That(MarketChannels.TryParse("markPrice", out var mark) && mark == MarketChannel.MarkPrice, Is.True);
        Assert.That(MarketChannels.StreamName("BTCUSDT", MarketChannel.MarkPrice), Is.EqualTo("btcusdt@markPrice@1s"));
        Assert.That(MarketChannels.StreamName("BTCUSDT", MarketChannel.ForceOrder), Is.EqualTo("btcusdt@forceOrder"));
        Assert.That(new[] { MarketChannel.MarkPrice.Route(), MarketChannel.ForceOrder.Route() }, Is.All.EqualTo(BinanceRoute.Market));
        Assert.That(MarketChannels.TryParseStreamName("btcusdt@markPrice@1s", out var symbol, out var channel) && symbol == "BTCUSDT" && channel == MarketChannel.MarkPrice, Is.True);
        Assert.That(MarketChannels.Streams(["bookTicker", "openInterest", "markPrice"]), Is.EqualTo(new[] { MarketChannel.BookTicker, MarketChannel.MarkPrice }));
    }

    [Test]
    public void MarkPriceEveryThreeSeconds_IsItsOwnStream_WithItsOwnStep()
    {
        Assert.That(MarketChannels.TryParse("markPrice@3s", out var slow) && slow == MarketChannel.MarkPrice3s, Is.True);
        Assert.That(MarketChannels.StreamName("BTCUSDT", MarketChannel.MarkPrice3s), Is.EqualTo("btcusdt@markPrice"), "Binance's plain @markPrice is the 3-second stream");
        Assert.That(MarketChannels.TryParseStreamName("btcusdt@markPrice", out _, out var channel) && channel == MarketChannel.MarkPrice3s, Is.True);
        Assert.That(Configuration.OptionsValidator.Validate(new Configuration.IngestorOptions { Channels = ["markPrice", "markPrice@3s"] }),
            Has.Some.Contains("one mark price stream"));

        var s = new SecondSequence(1, "btcusdt@markPrice", 0, MarketChannel.MarkPrice3s.MarkPricePeriodMs());
        Assert.That(s.Offer(3_000, 1, out _) && s.Offer(6_002, 1, out var none) && none is null, Is.True, "3 s apart is the stream's pace");
        Assert.That(s.Offer(12_000, 1, out var gap), Is.True);
        Assert.That((gap!.Reason, gap.StartMs, gap.EndMs), Is.EqualTo((GapReason.MissedSeconds, 6_003L, 11_999L)));
    }
}
