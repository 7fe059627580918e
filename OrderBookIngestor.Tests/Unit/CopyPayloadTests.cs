using OrderBookIngestor.Exchange;

using OrderBookIngestor.Pipeline;
using OrderBookIngestor.Storage;

namespace OrderBookIngestor.Tests.Unit;

/// <summary>Reading back what the COPY encoder wrote: the ledger's time range, and what a damaged spool record still shows.</summary>
public sealed class CopyPayloadTests
{
    private const long T0 = 1_764_000_000_000; // ms

    private static byte[] Trades(params (int Symbol, long Id)[] rows)
    {
        using var batch = new CopyBatch(16);
        foreach (var (symbol, id) in rows)
        {
            TradeRows.Encode(batch, new TradeEvent(symbol, id, T0 + id, T0 + id, (T0 + id) * 1000, 100, 1, id, id, false));
        }

        return batch.Payload().ToArray();
    }

    [Test]
    public void FirstColumnRange_IsTheEarliestAndLatestTime()
    {
        var range = CopyPayload.FirstColumnRange(Trades((1, 5), (1, 9), (2, 7)));
        Assert.That(range, Is.EqualTo((DateTime.UnixEpoch.AddMilliseconds(T0 + 5), DateTime.UnixEpoch.AddMilliseconds(T0 + 9))));
        Assert.That(CopyPayload.FirstColumnRange(Trades()), Is.Null);
    }

    [Test]
    public void Salvage_GivesEachSymbolsTimeAndIdRange()
    {
        var ranges = CopyPayload.Salvage("trades", Trades((1, 5), (2, 7), (1, 6), (1, 9)));
        Assert.That(ranges, Is.EqualTo(new[]
        {
            new CopyPayload.SymbolRange(1, (T0 + 5) * 1000, (T0 + 9) * 1000, 5, 9, 3),
            new CopyPayload.SymbolRange(2, (T0 + 7) * 1000, (T0 + 7) * 1000, 7, 7, 1),
        }));
    }

    [Test]
    public void Salvage_ReadsBookTickerRows_AsTheirEncoderWritesThem()
    {
        // Salvage keeps its own copy of the fixed row layouts; this fails if the encoder's columns change without it.
        using var batch = new CopyBatch(4);
        BookTickerRows.Encode(batch, new BookTickerEvent(3, 40, T0, T0, T0 * 1000, 100, 1, 101, 2));
        BookTickerRows.Encode(batch, new BookTickerEvent(3, 41, T0 + 5, T0 + 5, (T0 + 5) * 1000, 100, 1, 101, 2));
        Assert.That(CopyPayload.Salvage("book_ticker", batch.Payload().Span), Is.EqualTo(new[] { new CopyPayload.SymbolRange(3, T0 * 1000, (T0 + 5) * 1000, 40, 41, 2) }));
    }

    [Test]
    public void Salvage_SkipsADamagedFixedWidthRow_AndReadsTheRowsAfterIt()
    {
        var payload = Trades((1, 1), (1, 2), (1, 3), (1, 4));
        const int header = 19, row = 2 + (3 * 12) + 8 + (5 * 12) + (2 * 5);
        payload[header + row + 2 + 12 + 2] ^= 0x40; // the second row's second length field: its bytes no longer line up
        var ranges = CopyPayload.Salvage("trades", payload);
        Assert.That(ranges.Single() with { }, Is.EqualTo(new CopyPayload.SymbolRange(1, (T0 + 1) * 1000, (T0 + 4) * 1000, 1, 4, 3)),
            "three rows read, the fourth after the damaged one included");
    }

    [Test]
    public void Salvage_ReadsTheTablesWithoutIds_AsTheirEncodersWriteThem()
    {
        using var marks = new CopyBatch(4);
        MarkPriceRows.Encode(marks, new MarkPriceEvent(2, T0, T0 * 1000, 100, 99, 98, double.NaN, 0));
        MarkPriceRows.Encode(marks, new MarkPriceEvent(2, T0 + 1000, T0 * 1000, 100, 99, 98, 0.0001, T0 + 9000));
        using var liquidations = new CopyBatch(4);
        LiquidationRows.Encode(liquidations, new LiquidationEvent(5, T0 + 3, T0 + 2, T0 * 1000, "SELL", "LIMIT", "IOC", "FILLED", 1, 2, 2, 1, 1));
        using var interest = new CopyBatch(4);
        OpenInterestRows.Encode(interest, new OpenInterestRow(7, T0 + 60_000, T0 * 1000, 1234.5));
        Assert.Multiple(() =>
        {
            Assert.That(CopyPayload.Salvage("mark_price", marks.Payload().Span), Is.EqualTo(new[] { new CopyPayload.SymbolRange(2, T0 * 1000, (T0 + 1000) * 1000, 0, 0, 2) }));
            Assert.That(CopyPayload.Salvage("liquidations", liquidations.Payload().Span), Is.EqualTo(new[] { new CopyPayload.SymbolRange(5, (T0 + 3) * 1000, (T0 + 3) * 1000, 0, 0, 1) }));
            Assert.That(CopyPayload.Salvage("open_interest", interest.Payload().Span), Is.EqualTo(new[] { new CopyPayload.SymbolRange(7, (T0 + 60_000) * 1000, (T0 + 60_000) * 1000, 0, 0, 1) }));
            Assert.That(new[] { "mark_price", "liquidations", "open_interest" }.Select(CopyPayload.HasIds), Is.All.False);
        });
    }
}
