using BenchmarkDotNet.Attributes;
using OrderBookIngestor.Cli;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Pipeline;
using OrderBookIngestor.Storage;

namespace OrderBookIngestor.Benchmarks;

/// <summary>
/// The two per-message costs of the hot path, per message: parsing a combined-stream frame and encoding its
/// COPY row. Frames are the simulator's (50 symbols). Mean time per operation is time per message
/// (messages/s per core = 1 / mean); "Allocated" is bytes per message.
/// </summary>
[MemoryDiagnoser]
public class HotPathBenchmarks : IDisposable
{
    private byte[][] _frames = [];
    private ParsedFrame[] _parsed = [];
    private FrameParser _parser = null!;
    private CopyBatch _batch = null!;

    [GlobalSetup]
    public void Setup()
    {
        var (frames, symbols) = BenchCommand.Frames(50, [MarketChannel.BookTicker, MarketChannel.AggTrade]);
        _frames = frames.Take(FramesPerInvoke).ToArray();
        _parser = new FrameParser(symbols);
        _parsed = _frames.Select(f => { _parser.Parse(f, 1, out var r); return r; }).ToArray();
        _batch = new CopyBatch(FramesPerInvoke);
    }

    [GlobalCleanup]
    public void Cleanup() => Dispose();

    public void Dispose()
    {
        _batch?.Dispose();
        GC.SuppressFinalize(this);
    }

    private const int FramesPerInvoke = 10_000;

    [Benchmark(OperationsPerInvoke = FramesPerInvoke)]
    public int ParseFrame()
    {
        var accepted = 0;
        foreach (var frame in _frames)
        {
            accepted += _parser.Parse(frame, 1, out _) != FrameKind.Rejected ? 1 : 0;
        }

        return accepted;
    }

    [Benchmark(OperationsPerInvoke = FramesPerInvoke)]
    public int EncodeCopyRow()
    {
        _batch.Reset();
        foreach (var p in _parsed)
        {
            if (p.Kind == FrameKind.BookTicker)
            {
                BookTickerRows.Encode(_batch, p.BookTicker);
            }
            else
            {
                TradeRows.Encode(_batch, p.Trade);
            }
        }

        return _batch.Rows;
    }
}
