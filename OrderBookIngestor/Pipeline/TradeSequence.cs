namespace OrderBookIngestor.Pipeline;

public enum TradeDecision
{
    Accept,
    Duplicate,

    /// <summary>Accepted, and ids between the previous highest and this one are missing.</summary>
    AcceptWithGap,
}

/// <summary>
/// aggTrade ids of one symbol are contiguous. This keeps the highest id stored and the ranges still
/// missing, so that a replayed or overlapping frame is dropped, a hole is noticed the moment the next
/// id arrives, and a late frame or a backfilled trade fills exactly the hole it belongs to.
/// Shared by every connection that carries the symbol (overlap during rotation), hence the lock.
/// </summary>
public sealed class TradeSequence
{
    private readonly Lock _gate = new();
    private readonly List<(long From, long To)> _missing = [];
    private long _highest;

    /// <param name="highestStored">The highest id already in the database, or 0 when none: the first live
    /// id after a restart then reveals the downtime as a gap to backfill.</param>
    public TradeSequence(int symbolId, string stream, long highestStored, long highestStoredTimeMs)
    {
        SymbolId = symbolId;
        Stream = stream;
        _highest = highestStored;
        HighestTimeMs = highestStoredTimeMs;
    }

    public int SymbolId { get; }

    public string Stream { get; }

    /// <summary>Local time (Unix ms) a frame of this stream last arrived, duplicates included: the stream is alive.</summary>
    public StreamActivity Activity { get; } = new();

    /// <summary>Trade time of the highest id seen, to date a gap's start.</summary>
    public long HighestTimeMs { get; private set; }

    public long Highest
    {
        get
        {
            lock (_gate)
            {
                return _highest;
            }
        }
    }

    public int MissingRanges
    {
        get
        {
            lock (_gate)
            {
                return _missing.Count;
            }
        }
    }

    public TradeDecision Offer(long id, long timeMs, out long gapFrom, out long gapTo)
    {
        gapFrom = gapTo = 0;
        lock (_gate)
        {
            if (id == _highest + 1 || _highest == 0)
            {
                _highest = id;
                HighestTimeMs = timeMs;
                return TradeDecision.Accept;
            }

            if (id > _highest)
            {
                gapFrom = _highest + 1;
                gapTo = id - 1;
                _missing.Add((gapFrom, gapTo));
                _highest = id;
                HighestTimeMs = timeMs;
                return TradeDecision.AcceptWithGap;
            }

            return TakeMissing(id) ? TradeDecision.Accept : TradeDecision.Duplicate;
        }
    }

    /// <summary>A backfilled trade: accepted only if its id is still missing.</summary>
    public bool OfferBackfilled(long id)
    {
        lock (_gate)
        {
            return TakeMissing(id);
        }
    }

    /// <summary>
    /// Marks [from, to] missing again although it was passed: rows once received for these ids were lost before they
    /// reached the database (a damaged spool record), so a backfill may fill them. Ids already missing stay so once.
    /// </summary>
    public void Reopen(long from, long to)
    {
        lock (_gate)
        {
            to = Math.Min(to, _highest);
            if (from > to)
            {
                return;
            }

            foreach (var (f, t) in _missing.Where(r => r.To >= from && r.From <= to).ToList())
            {
                _missing.Remove((f, t));
                (from, to) = (Math.Min(from, f), Math.Max(to, t));
            }

            _missing.Add((from, to));
        }
    }

    /// <summary>What is still missing within [from, to], e.g. after backfill gave up.</summary>
    public List<(long From, long To)> StillMissing(long from, long to)
    {
        lock (_gate)
        {
            return _missing.Where(r => r.To >= from && r.From <= to)
                .Select(r => (Math.Max(r.From, from), Math.Min(r.To, to))).ToList();
        }
    }

    /// <summary>Stops tracking [from, to] as missing: it has been written to the gap ledger.</summary>
    public void Abandon(long from, long to)
    {
        lock (_gate)
        {
            for (var id = from; id <= to;)
            {
                var i = _missing.FindIndex(r => r.From <= id && id <= r.To);
                if (i < 0)
                {
                    id++;
                    continue;
                }

                var r = _missing[i];
                var end = Math.Min(r.To, to);
                _missing.RemoveAt(i);
                if (r.From < id)
                {
                    _missing.Add((r.From, id - 1));
                }

                if (end < r.To)
                {
                    _missing.Add((end + 1, r.To));
                }

                id = end + 1;
            }
        }
    }

    private bool TakeMissing(long id)
    {
        for (var i = 0; i < _missing.Count; i++)
        {
            var (from, to) = _missing[i];
            if (id < from || id > to)
            {
                continue;
            }

            _missing.RemoveAt(i);
            if (from < id)
            {
                _missing.Add((from, id - 1));
            }

            if (id < to)
            {
                _missing.Add((id + 1, to));
            }

            return true;
        }

        return false;
    }
}
