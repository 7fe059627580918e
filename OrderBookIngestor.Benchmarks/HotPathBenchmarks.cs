using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using OrderBookIngestor.Cli;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Observability;
using OrderBookIngestor.Pipeline;
using OrderBookIngestor.Storage;

namespace OrderBookIngestor.Benchmarks;

/// <summary>
/// The three per-message costs of the hot path, per message: parsing a combined-stream frame, routing its event
/// (duplicate and gap checks, into its table's buffer) and encoding its COPY row. Frames are the simulator's (50 symbols). Mean time per operation is time per message
/// (messages/s per core = 1 / mean); "Allocated" is bytes per message.
/// </summary>
[MemoryDiagnoser]
public class HotPathBenchmarks : IDisposable
{
    private byte[][] _frames = [];
    private ParsedFrame[] _parsed = [];
    private FrameParser _parser = null!;
    private CopyBatch _batch = null!;
    private EventRouter _router = null!;
    private EventBuffers _buffers = null!;
    private long _round;
    private long[] _idSpans = [];

    [GlobalSetup]
    public void Setup()
    {
        var (frames, symbols) = BenchCommand.Frames(50, [MarketChannel.BookTicker, MarketChannel.AggTrade]);
        _frames = frames.Take(FramesPerInvoke).ToArray();
        _parser = new FrameParser(symbols);
        _parsed = _frames.Select(f => { _parser.Parse(f, 1, out var r); return r; }).ToArray();
        _batch = new CopyBatch(FramesPerInvoke);
        _buffers = new EventBuffers(FramesPerInvoke * 2);
        _router = new EventRouter(_buffers, new StreamStates(symbols, new Dictionary<int, LastStored>()), new GapLedger(),
            Channel.CreateUnbounded<BackfillRequest>().Writer, new IngestorMetrics(TimeProvider.System), symbols, TimeProvider.System);
        // Each round shifts every id past the last round's: a symbol's aggTrade ids by exactly their span (no hole, no
        // repeat), bookTicker ids (which need only rise) by the largest.
        var trades = _parsed.Where(p => p.Kind == FrameKind.Trade).GroupBy(p => p.Trade.SymbolId)
            .ToDictionary(g => g.Key, g => g.Max(p => p.Trade.AggTradeId) - g.Min(p => p.Trade.AggTradeId) + 1);
        var bookTickers = _parsed.Where(p => p.Kind == FrameKind.BookTicker).Max(p => p.BookTicker.UpdateId) + 1;
        _idSpans = _parsed.Select(p => p.Kind == FrameKind.BookTicker ? bookTickers : trades[p.Trade.SymbolId]).ToArray();
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
    public int RouteEvent()
    {
        var round = ++_round;
        for (var i = 0; i < _parsed.Length; i++)
        {
            var p = _parsed[i];
            var shift = round * _idSpans[i];
            var routed = p.Kind == FrameKind.BookTicker
                ? _router.RouteBookTickerAsync(p.BookTicker with { UpdateId = p.BookTicker.UpdateId + shift }, default)
                : _router.RouteTradeAsync(p.Trade with { AggTradeId = p.Trade.AggTradeId + shift }, default);
            if (!routed.IsCompletedSuccessfully)
            {
                throw new InvalidOperationException("a buffer filled up: the benchmark drains them too late");
            }
        }

        var drained = 0;
        while (_buffers.BookTickers.Reader.TryRead(out _))
        {
            drained++;
        }

        while (_buffers.Trades.Reader.TryRead(out _))
        {
            drained++;
        }

        return drained == _parsed.Length ? drained : throw new InvalidOperationException($"{drained} of {_parsed.Length} events routed");
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
