using OrderBookIngestor.Exchange;

using OrderBookIngestor.Pipeline;

namespace OrderBookIngestor.Books;

public enum BookState
{
    /// <summary>Buffering diffs until a REST snapshot arrives.</summary>
    NeedSnapshot,

    /// <summary>A snapshot is loaded; waiting for the first diff that joins it (see <see cref="DepthSequencer"/>).</summary>
    AwaitingFirstDiff,

    /// <summary>Every diff's pu equals the previous diff's u.</summary>
    Synced,
}

public enum SnapshotOutcome
{
    Synced,
    AwaitingFirstDiff,

    /// <summary>The snapshot is older than the oldest buffered diff: fetch another.</summary>
    TooOld,
}

/// <summary>
/// Keeps one symbol's book in step with Binance's USD-M diff stream: buffer diffs, load a REST snapshot,
/// drop diffs with u &lt; lastUpdateId, start from the first diff that joins the snapshot, then require every
/// diff's pu to equal the previous u. A break writes a gap row and resyncs this symbol only.
/// Two relations join a diff to a snapshot without a hole: the documented U ≤ lastUpdateId ≤ u, and the one the
/// live USD-M and COIN-M streams often send instead, a diff that continues the snapshot (pu = lastUpdateId,
/// U &gt; lastUpdateId). Taking only the first would fetch snapshot after snapshot (weight 20 each) while every
/// one of them was good.
/// Diffs are stored whatever the book's state (a replay starts from a stored snapshot), so this class
/// only decides what is a duplicate and what the book looks like.
/// </summary>
public sealed class DepthSequencer : IDepthBook
{
    /// <summary>Diffs kept while waiting for a snapshot; older ones are dropped from the buffer (they are still stored).</summary>
    private const int MaxPending = 20_000;

    private readonly Lock _gate = new();
    private readonly List<PendingDiff> _pending = [];
    private long _highestSeen;
    private long _lastApplied;
    private long _snapshotId;
    private bool _snapshotRequested;

    private long _storedBeforeStart;
    private long _storedBeforeStartTimeMs;

    /// <param name="lastStoredUpdateId">The highest final_update_id already stored (0 when none): older diffs are
    /// duplicates, and the first diff after a restart dates the downtime's hole in the gap ledger.</param>
    public DepthSequencer(int symbolId, string symbol, string stream, long lastStoredUpdateId = 0, long lastStoredTimeMs = 0)
    {
        SymbolId = symbolId;
        Symbol = symbol;
        Stream = stream;
        _highestSeen = lastStoredUpdateId;
        _storedBeforeStart = lastStoredUpdateId;
        _storedBeforeStartTimeMs = lastStoredTimeMs;
    }

    public int SymbolId { get; }

    public string Symbol { get; }

    public string Stream { get; }

    /// <summary>Local time (Unix ms) a frame of this stream last arrived, duplicates included: the stream is alive.</summary>
    public StreamActivity Activity { get; } = new();

    public OrderBook Book { get; } = new();

    public BookState State { get; private set; } = BookState.NeedSnapshot;

    public long LastAppliedUpdateId => _lastApplied;

    public long LastEventTimeMs { get; private set; }

    public int Resyncs { get; private set; }

    /// <summary>Takes the lock that guards the book; hold it only briefly (e.g. to sample the top levels).</summary>
    public Lock.Scope Enter() => _gate.EnterScope();


    /// <param name="needSnapshot">True when the caller must request a REST snapshot for this symbol.</param>
    public DepthDecision Offer(in DepthEvent e, long nowMs, out GapRecord? gap, out bool needSnapshot)
    {
        gap = null;
        needSnapshot = false;
        lock (_gate)
        {
            // While resyncing, the buffered diffs are the reference: an id pushed up by a corrupted frame must not
            // make genuine diffs look like duplicates.
            var final = e.FinalUpdateId;
            if (State == BookState.NeedSnapshot ? _pending.Exists(p => p.Final == final) : final <= _highestSeen)
            {
                return DepthDecision.Duplicate;
            }

            if (_storedBeforeStart > 0)
            {
                // First diff since the daemon started on a database that already had this stream.
                if (e.FirstUpdateId > _storedBeforeStart + 1)
                {
                    gap = new GapRecord(SymbolId, Stream, Math.Min(_storedBeforeStartTimeMs, e.EventTimeMs), e.EventTimeMs, _storedBeforeStart + 1,
                        e.FirstUpdateId - 1, GapReason.DaemonDown, nowMs, "diffs sent while the daemon was not running");
                }

                _storedBeforeStart = 0;
            }

            _highestSeen = e.FinalUpdateId;
            var previousTimeMs = LastEventTimeMs > 0 ? LastEventTimeMs : e.EventTimeMs;
            LastEventTimeMs = e.EventTimeMs;
            switch (State)
            {
                case BookState.Synced when e.PrevFinalUpdateId == _lastApplied:
                    Book.Apply(e.BidSpan, e.AskSpan);
                    _lastApplied = e.FinalUpdateId;
                    return DepthDecision.Accept;
                case BookState.Synced:
                    gap = new GapRecord(SymbolId, Stream, previousTimeMs, e.EventTimeMs, _lastApplied + 1, Math.Max(_lastApplied + 1, e.FirstUpdateId - 1),
                        GapReason.DepthSequence, nowMs, $"pu {e.PrevFinalUpdateId} after u {_lastApplied}; resynced from a snapshot");
                    Resync();
                    break;
                case BookState.AwaitingFirstDiff when e.FinalUpdateId < _snapshotId:
                    return DepthDecision.Accept; // already inside the snapshot
                case BookState.AwaitingFirstDiff when JoinsSnapshot(e.FirstUpdateId, e.PrevFinalUpdateId, _snapshotId):
                    Book.Apply(e.BidSpan, e.AskSpan);
                    _lastApplied = e.FinalUpdateId;
                    _highestSeen = _lastApplied;
                    State = BookState.Synced;
                    return DepthDecision.Accept;
                case BookState.AwaitingFirstDiff:
                    // The snapshot missed the diffs between it and this one: fetch a newer one.
                    Resync();
                    break;
            }

            if (_pending.Count == MaxPending)
            {
                _pending.RemoveAt(0);
            }

            _pending.Add(new PendingDiff(e.FirstUpdateId, e.FinalUpdateId, e.PrevFinalUpdateId, e.BidSpan.ToArray(), e.AskSpan.ToArray()));
            if (!_snapshotRequested)
            {
                _snapshotRequested = needSnapshot = true;
            }

            return DepthDecision.Accept;
        }
    }

    /// <summary>Loads a REST snapshot (levels interleaved price, qty) and applies the buffered diffs that follow it.</summary>
    public SnapshotOutcome ApplySnapshot(long lastUpdateId, ReadOnlySpan<double> bids, ReadOnlySpan<double> asks, long nowMs, out GapRecord? gap)
    {
        gap = null;
        lock (_gate)
        {
            _snapshotRequested = false;
            _pending.RemoveAll(d => d.Final < lastUpdateId);
            if (_pending.Count > 0 && !JoinsSnapshot(_pending[0].First, _pending[0].Prev, lastUpdateId))
            {
                _snapshotRequested = true;
                return SnapshotOutcome.TooOld;
            }

            Book.Clear();
            Book.Apply(bids, asks);
            _snapshotId = lastUpdateId;
            _lastApplied = lastUpdateId;
            if (_pending.Count == 0)
            {
                State = BookState.AwaitingFirstDiff;
                return SnapshotOutcome.AwaitingFirstDiff;
            }

            for (var i = 0; i < _pending.Count; i++)
            {
                var d = _pending[i];
                if (i > 0 && d.Prev != _lastApplied)
                {
                    gap = new GapRecord(SymbolId, Stream, LastEventTimeMs, LastEventTimeMs, _lastApplied + 1, Math.Max(_lastApplied + 1, d.First - 1),
                        GapReason.DepthSequence, nowMs, "break inside the diffs buffered during a resync");
                    _pending.RemoveRange(0, i);
                    _snapshotRequested = true;
                    State = BookState.NeedSnapshot;
                    Resyncs++;
                    return SnapshotOutcome.TooOld;
                }

                Book.Apply(d.Bids, d.Asks);
                _lastApplied = d.Final;
            }

            _pending.Clear();
            // The exchange's snapshot and the chain after it are the truth now.
            _highestSeen = _lastApplied;
            State = BookState.Synced;
            return SnapshotOutcome.Synced;
        }
    }

    /// <summary>Whether a diff with u ≥ lastUpdateId joins the snapshot without a hole: it spans it (U ≤ lastUpdateId,
    /// as documented) or continues it (pu = lastUpdateId, as the live stream often has it).</summary>
    private static bool JoinsSnapshot(long first, long prev, long lastUpdateId) => first <= lastUpdateId || prev == lastUpdateId;

    private void Resync()
    {
        State = BookState.NeedSnapshot;
        Book.Clear();
        _pending.Clear();
        Resyncs++;
    }

    private sealed record PendingDiff(long First, long Final, long Prev, double[] Bids, double[] Asks);
}
