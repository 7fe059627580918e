using System.Text;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Pipeline;
using OrderBookIngestor.Tests.Support;

namespace OrderBookIngestor.Tests.Unit;

/// <summary>Seeded mutation fuzzing: whatever the bytes, the parser returns a verdict, and any event it accepts holds only valid values.</summary>
public sealed class ParserFuzzTests
{
    private static readonly SymbolTable Symbols = new(new Dictionary<string, int> { ["BNBUSDT"] = 3, ["BTCUSDT"] = 1 });
    private static readonly string[] Seeds = [Frames.BookTickerCombined, Frames.BookTickerRaw, Frames.AggTradeCombined, Frames.DepthUpdate, """{"result":null,"id":1}"""];

    public static byte[] Mutate(Random r, byte[] frame)
    {
        var bytes = new List<byte>(frame);
        var edits = 1 + r.Next(4);
        for (var i = 0; i < edits && bytes.Count > 0; i++)
        {
            var at = r.Next(bytes.Count);
            switch (r.Next(7))
            {
                case 0: bytes[at] ^= (byte)(1 << r.Next(8)); break;                          // bit flip
                case 1: bytes.RemoveRange(at, bytes.Count - at); break;                        // truncation
                case 2: bytes.Insert(at, (byte)r.Next(256)); break;                           // random byte
                case 3: bytes.RemoveAt(at); break;                                            // deletion
                case 4: bytes.InsertRange(at, Encoding.ASCII.GetBytes(Interesting[r.Next(Interesting.Length)])); break;
                case 5: bytes.InsertRange(at, bytes.GetRange(at, Math.Min(bytes.Count - at, r.Next(20)))); break; // duplicate a run
                default: bytes[at] = (byte)Structural[r.Next(Structural.Length)]; break;    // structural byte
            }
        }

        return [.. bytes];
    }

    private const string Structural = "{}[]\",:-.0eE9";

    private static readonly string[] Interesting =
        ["NaN", "-1", "1e309", "\"-0\"", "99999999999999999999", "\\u0000", "null", "[[]]", "{}", "\"\"", "\"e\":\"bookTicker\"", ",\"s\":\"BTCUSDT\""];

    [Test]
    public void MutatedFrames_NeverThrow_AndNeverYieldAnInvalidEvent()
    {
        var parser = new FrameParser(Symbols);
        var random = new Random(20261122);
        int accepted = 0, rejected = 0;
        for (var i = 0; i < 50_000; i++)
        {
            var frame = Mutate(random, Encoding.UTF8.GetBytes(Seeds[random.Next(Seeds.Length)]));
            var kind = parser.Parse(frame, 1, out var r);
            switch (kind)
            {
                case FrameKind.BookTicker:
                    var b = r.BookTicker;
                    Assert.That(b.SymbolId is 1 or 3 && b.UpdateId >= 0 && b.BestBid > 0 && b.BestAsk > 0 && b.BidQty >= 0 && b.AskQty >= 0
                        && double.IsFinite(b.BestBid + b.BestAsk + b.BidQty + b.AskQty) && b.EventTimeMs > 0, Is.True, Encoding.UTF8.GetString(frame));
                    accepted++;
                    break;
                case FrameKind.Trade:
                    var t = r.Trade;
                    Assert.That(t.SymbolId is 1 or 3 && t.Price > 0 && t.Qty >= 0 && double.IsFinite(t.Price + t.Qty) && t.LastTradeId >= t.FirstTradeId, Is.True, Encoding.UTF8.GetString(frame));
                    accepted++;
                    break;
                case FrameKind.Depth:
                    var d = r.Depth;
                    Assert.That(d.FinalUpdateId >= d.FirstUpdateId && AllValid(d.BidSpan) && AllValid(d.AskSpan), Is.True, Encoding.UTF8.GetString(frame));
                    d.Release();
                    accepted++;
                    break;
                case FrameKind.Rejected:
                    Assert.That(r.Reason, Is.Not.EqualTo(RejectReason.None));
                    rejected++;
                    break;
            }
        }

        // Both outcomes must occur, or the fuzzer is not exercising anything.
        Assert.That(accepted, Is.GreaterThan(1_000));
        Assert.That(rejected, Is.GreaterThan(10_000));
    }

    private static bool AllValid(ReadOnlySpan<double> levels)
    {
        for (var i = 0; i < levels.Length; i += 2)
        {
            if (!(levels[i] > 0 && double.IsFinite(levels[i]) && levels[i + 1] >= 0 && double.IsFinite(levels[i + 1])))
            {
                return false;
            }
        }

        return true;
    }
}
