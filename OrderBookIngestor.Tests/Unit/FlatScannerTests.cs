using System.Text;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Tests.Support;

namespace OrderBookIngestor.Tests.Unit;

/// <summary>
/// The flat scanner is a shortcut, not a second parser: for any bytes, the parser with it must give what the parser
/// without it (Utf8JsonReader alone) gives, kind, reason and every value; and it must take the frames it is for.
/// </summary>
public sealed class FlatScannerTests
{
    private static readonly SymbolTable Symbols = new(new Dictionary<string, int> { ["BNBUSDT"] = 3, ["BTCUSDT"] = 1 });

    private const string MarkPrice =
        """{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000","i":"11784.62659091","P":"11784.25641265","r":"-0.00038167","T":1562306400000}}""";

    private const string ForceOrder =
        """{"e":"forceOrder","E":1568014460893,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC","q":"0.014","p":"9910","ap":"9910","X":"FILLED","l":"0.014","z":"0.014","T":1568014460893}}""";

    private static readonly string[] Seeds =
    [
        Frames.BookTickerCombined, Frames.BookTickerRaw, Frames.AggTradeCombined, Frames.DepthUpdate, MarkPrice, ForceOrder,
        """{"result":null,"id":1}""", """{"error":{"code":2,"msg":"Invalid request"},"id":7}""",
        // aggTrade as Binance sends it today, with the field the parser ignores.
        """{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":123456789,"s":"BTCUSDT","a":5933014,"p":"0.001","q":"100","nq":"100","f":100,"l":105,"T":123456785,"m":false}}""",
    ];

    [TestCase(Frames.BookTickerCombined, FrameKind.BookTicker)]
    [TestCase(Frames.BookTickerRaw, FrameKind.BookTicker)]
    [TestCase(Frames.AggTradeCombined, FrameKind.Trade)]
    [TestCase(MarkPrice, FrameKind.MarkPrice)]
    public void TheFramesItIsFor_AreScanned_AndParsedAsBefore(string frame, FrameKind kind)
    {
        var flat = new FrameParser(Symbols);
        Assert.That(Describe(flat, Encoding.UTF8.GetBytes(frame)), Does.StartWith(kind.ToString()));
        Assert.That(flat.FlatFrames, Is.EqualTo(1), "taken by the flat scanner");
        AssertSame(Encoding.UTF8.GetBytes(frame));
    }

    [TestCase(Frames.DepthUpdate)]
    [TestCase(ForceOrder)]
    [TestCase("""{"result":null,"id":1}""")]
    [TestCase("""{ "e":"bookTicker"}""")]
    [TestCase("""{"e":"book\u0054icker"}""")]
    [TestCase("""{"e":"bookTicker","u":1.5}""")]
    [TestCase("""{"e":"bookTicker","u":null}""")]
    [TestCase("""{"e":"bookTicker","u":0123}""")]
    [TestCase("""{"e":"bookTicker","u":1234567890123456789}""")]
    [TestCase("""{"e":"bookTicker","s":"BTCÜSDT"}""")]
    [TestCase("""{"e":"bookTicker"} """)]
    [TestCase("""{"e":"bookTicker",}""")]
    [TestCase("""{}""")]
    [TestCase("""{"e":"bookTicker""")]
    public void AnythingElse_GoesToTheGeneralReader(string frame)
    {
        var flat = new FrameParser(Symbols);
        Describe(flat, Encoding.UTF8.GetBytes(frame));
        Assert.That(flat.FlatFrames, Is.Zero);
        AssertSame(Encoding.UTF8.GetBytes(frame));
    }

    [TestCase("""{"e":"bookTicker","u":-0,"E":1,"T":1,"s":"BTCUSDT","b":"1","B":"1","a":"1","A":"1"}""")]
    [TestCase("""{"e":"bookTicker","u":-5,"E":1,"T":1,"s":"BTCUSDT","b":"1","B":"1","a":"1","A":"1"}""")]
    [TestCase("""{"e":"bookTicker","u":123456789012345678,"E":1,"T":1,"s":"BTCUSDT","b":"1","B":"1","a":"1","A":"1"}""")]
    [TestCase("""{"e":"bookTicker","u":1,"u":2,"E":1,"T":1,"s":"BTCUSDT","b":"1","B":"1","a":"1","A":"1"}""")]
    [TestCase("""{"e":"bookTicker","u":"1","E":1,"T":1,"s":"BTCUSDT","b":"1","B":"1","a":"1","A":"1"}""")]
    [TestCase("""{"e":"bookTicker","u":1,"E":1,"T":1,"s":"BTCUSDT","b":1,"B":"1","a":true,"A":"1"}""")]
    [TestCase("""{"e":"aggTrade","E":1,"s":"BTCUSDT","a":"5","p":"1","q":"1","f":1,"l":1,"T":1,"m":"true"}""")]
    [TestCase("""{"e":"aggTrade","E":1,"s":"BTCUSDT","a":5,"p":"1","q":"1","f":1,"l":1,"T":1,"m":true,"o":1}""")]
    [TestCase("""{"stream":"x","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":5,"p":"1","q":"1","f":1,"l":1,"T":1},"data":{"m":true}}""")]
    [TestCase("""{"stream":7,"data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":5,"p":"1","q":"1","f":1,"l":1,"T":1,"m":true,"data":"x"}}""")]
    [TestCase("""{"data":{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"1","i":"1","P":"1","r":"","T":0}}""")]
    [TestCase("""{"data":"x"}""")]
    [TestCase("""{"e":"bookTicker","u":1,"E":1,"T":1,"s":"ETHUSDT","b":"1","B":"1","a":"1","A":"1"}""")]
    public void EdgeCases_AgreeWithTheGeneralReader(string frame) => AssertSame(Encoding.UTF8.GetBytes(frame));

    [Test]
    public void MutatedFrames_AgreeWithTheGeneralReader()
    {
        var flat = new FrameParser(Symbols);
        var random = new Random(20261203);
        for (var i = 0; i < 200_000; i++)
        {
            var frame = ParserFuzzTests.Mutate(random, Encoding.UTF8.GetBytes(Seeds[random.Next(Seeds.Length)]));
            var expected = Describe(new FrameParser(Symbols, scanFlat: false), frame);
            var actual = Describe(flat, frame);
            if (actual != expected)
            {
                Assert.Fail($"{Encoding.UTF8.GetString(frame)}\nflat:    {actual}\ngeneral: {expected}");
            }
        }

        // Most mutations break the flat shape; enough must keep it for the comparison to mean something.
        Assert.That(flat.FlatFrames, Is.GreaterThan(10_000));
    }

    /// <summary>Valid flat events with fields replaced by random values of every kind the scanner takes, fields
    /// added (known or not, repeated) and removed: the two readers must fill the fields alike.</summary>
    [Test]
    public void GeneratedFlatFrames_AgreeWithTheGeneralReader()
    {
        string[][] templates =
        [
            ["\"e\":\"bookTicker\"", "\"u\":400900217", "\"E\":1568014460893", "\"T\":1568014460891", "\"s\":\"BNBUSDT\"", "\"b\":\"25.3519\"", "\"B\":\"31.21\"", "\"a\":\"25.3652\"", "\"A\":\"40.66\""],
            ["\"e\":\"aggTrade\"", "\"E\":123456789", "\"s\":\"BTCUSDT\"", "\"a\":5933014", "\"p\":\"0.001\"", "\"q\":\"100\"", "\"f\":100", "\"l\":105", "\"T\":123456785", "\"m\":true"],
            ["\"e\":\"markPriceUpdate\"", "\"E\":1562305380000", "\"s\":\"BTCUSDT\"", "\"p\":\"11794.15\"", "\"i\":\"11784.6\"", "\"P\":\"11784.2\"", "\"r\":\"-0.0003\"", "\"T\":1562306400000"],
        ];
        string[] names = ["e", "E", "T", "s", "u", "U", "pu", "b", "B", "a", "A", "p", "q", "f", "l", "m", "i", "P", "r", "o", "nq", "x", "data", "stream"];
        string[] values =
        [
            "\"BTCUSDT\"", "\"ETHUSDT\"", "\"aggTrade\"", "\"bookTicker\"", "\"1.5\"", "\"0\"", "\"-2\"", "\"\"", "\"1e3\"", "\"+1\"",
            "0", "-0", "7", "-7", "1568014460893", "999999999999999999", "true", "false",
        ];
        var flat = new FrameParser(Symbols);
        var random = new Random(3);
        var outcomes = new Dictionary<string, int>();
        for (var i = 0; i < 100_000; i++)
        {
            var fields = templates[random.Next(templates.Length)].ToList();
            var edits = random.Next(0, 4);
            for (var k = 0; k < edits; k++)
            {
                var field = $"\"{names[random.Next(names.Length)]}\":{values[random.Next(values.Length)]}";
                switch (random.Next(3))
                {
                    case 0: fields[random.Next(fields.Count)] = fields[random.Next(fields.Count)].Split(':')[0] + ":" + values[random.Next(values.Length)]; break;
                    case 1: fields.Insert(random.Next(fields.Count + 1), field); break;
                    default: fields.RemoveAt(random.Next(fields.Count)); break;
                }
            }

            if (fields.Count == 0)
            {
                continue;
            }

            var body = "{" + string.Join(',', fields.OrderBy(_ => random.Next(4))) + "}";
            var frame = Encoding.UTF8.GetBytes(random.Next(2) == 0 ? body : $"{{\"stream\":\"x\",\"data\":{body}}}");
            var expected = Describe(new FrameParser(Symbols, scanFlat: false), frame);
            var actual = Describe(flat, frame);
            if (actual != expected)
            {
                Assert.Fail($"{Encoding.UTF8.GetString(frame)}\nflat:    {actual}\ngeneral: {expected}");
            }

            var outcome = expected.Split(' ')[0] + " " + expected.Split(' ')[1];
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
        }

        // Events of each kind and rejections for many reasons, nearly all through the scanner.
        Assert.That(flat.FlatFrames, Is.GreaterThan(80_000), "only a top-level \"data\" that is not an object is not flat");
        Assert.That(outcomes.Keys, Is.SupersetOf(new[]
        {
            "BookTicker None", "Trade None", "MarkPrice None", "Rejected MissingField", "Rejected WrongType", "Rejected InvalidNumber",
            "Rejected UnknownSymbol", "Rejected NegativeValue", "Rejected NonPositivePrice", "Rejected UnknownEvent",
        }), string.Join(", ", outcomes.Select(o => $"{o.Key}: {o.Value}")));
    }

    private static void AssertSame(byte[] frame)
        => Assert.That(Describe(new FrameParser(Symbols), frame), Is.EqualTo(Describe(new FrameParser(Symbols, scanFlat: false), frame)),
            Encoding.UTF8.GetString(frame));

    private static string Describe(FrameParser parser, byte[] frame)
    {
        var kind = parser.Parse(frame, 42, out var r);
        var payload = kind switch
        {
            FrameKind.BookTicker => r.BookTicker.ToString(),
            FrameKind.Trade => r.Trade.ToString(),
            FrameKind.MarkPrice => r.MarkPrice.ToString(),
            FrameKind.Liquidation => r.Liquidation.ToString(),
            FrameKind.Depth => $"{r.Depth.FirstUpdateId} {r.Depth.FinalUpdateId} {string.Join(',', r.Depth.BidSpan.ToArray())} / {string.Join(',', r.Depth.AskSpan.ToArray())}",
            FrameKind.ControlResult or FrameKind.ControlError => r.ControlId.ToString(System.Globalization.CultureInfo.InvariantCulture),
            _ => "",
        };
        if (kind == FrameKind.Depth)
        {
            r.Depth.Release();
        }

        return $"{kind} {r.Reason} {payload}";
    }
}
