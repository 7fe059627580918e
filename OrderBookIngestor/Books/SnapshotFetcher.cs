using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Observability;
using OrderBookIngestor.Pipeline;

namespace OrderBookIngestor.Books;

/// <summary>
/// Fetches REST depth snapshots for books that need one, one request at a time per symbol and paced by the
/// weight gate, so a reconnect of hundreds of symbols queues rather than bursts. Every snapshot fetched is
/// stored (marketdata.book_snapshots): stored diffs can be replayed from it.
/// </summary>
public sealed class SnapshotFetcher
{
    private readonly Channel<DepthSequencer> _requests = Channel.CreateUnbounded<DepthSequencer>(new UnboundedChannelOptions { SingleReader = true });
    private readonly BinanceRestClient _rest;
    private readonly EventBuffers _buffers;
    private readonly GapLedger _gaps;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly int _limit;

    public SnapshotFetcher(BinanceRestClient rest, EventBuffers buffers, GapLedger gaps, TimeProvider time, ILogger log, int limit)
    {
        _rest = rest;
        _buffers = buffers;
        _gaps = gaps;
        _time = time;
        _log = log;
        _limit = limit;
    }

    public void Request(DepthSequencer book) => _requests.Writer.TryWrite(book);

    public async Task RunAsync(CancellationToken stop, CancellationToken abort)
    {
        try
        {
            await foreach (var book in _requests.Reader.ReadAllAsync(stop).ConfigureAwait(false))
            {
                await SyncAsync(book, stop, abort).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // shutting down; unsynced books simply stop (their diffs are stored, and the gap rows written)
        }
    }

    private async Task SyncAsync(DepthSequencer book, CancellationToken stop, CancellationToken abort)
    {
        for (var attempt = 1; !stop.IsCancellationRequested; attempt++)
        {
            BinanceRestClient.DepthSnapshot snapshot;
            try
            {
                snapshot = await _rest.GetDepthAsync(book.Symbol, _limit, stop).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is HttpRequestException or System.Text.Json.JsonException
                                           || (ex is TaskCanceledException && !stop.IsCancellationRequested))
            {
                Log.SnapshotFailed(_log, book.Symbol, attempt, ex.Message);
                await Task.Delay(TimeSpan.FromSeconds(Math.Min(30, Math.Pow(2, attempt))), _time, stop).ConfigureAwait(false);
                continue;
            }

            var now = _time.GetUtcNow();
            var ingestUs = (now.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10;
            await _buffers.Snapshots.Writer.WriteAsync(
                new SnapshotRow(book.SymbolId, snapshot.LastUpdateId, snapshot.EventTimeMs > 0 ? snapshot.EventTimeMs : now.ToUnixTimeMilliseconds(), ingestUs, snapshot.Bids, snapshot.Asks),
                abort).ConfigureAwait(false);
            var outcome = book.ApplySnapshot(snapshot.LastUpdateId, snapshot.Bids, snapshot.Asks, now.ToUnixTimeMilliseconds(), out var gap);
            if (gap is not null)
            {
                _gaps.Record(gap);
            }

            Log.SnapshotApplied(_log, book.Symbol, snapshot.LastUpdateId, outcome.ToString());
            if (outcome != SnapshotOutcome.TooOld)
            {
                return;
            }

            // The diffs moved past this snapshot: give the stream a moment, then fetch a newer one.
            await Task.Delay(TimeSpan.FromMilliseconds(250), _time, stop).ConfigureAwait(false);
        }
    }
}
