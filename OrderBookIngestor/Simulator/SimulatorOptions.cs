namespace OrderBookIngestor.Simulator;

public sealed class SimulatorOptions
{
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>0 picks a free port (tests).</summary>
    public int Port { get; set; } = 9471;

    /// <summary>How many symbols the fake exchange lists (BTCUSDT, ETHUSDT, ... then S0021USDT ...).</summary>
    public int Symbols { get; set; } = 50;

    /// <summary>Events per second across all subscribed streams.</summary>
    public int Rate { get; set; } = 2_000;

    /// <summary>Stop generating after this many events; 0 runs until stopped.</summary>
    public long Events { get; set; }

    public int Seed { get; set; } = 1;

    /// <summary>The market clock starts once this many distinct streams have a subscriber.</summary>
    public int WaitForStreams { get; set; } = 1;

    /// <summary>Frames queued for one client before it is judged too slow and disconnected, as the exchange does.</summary>
    public int MaxQueuedFrames { get; set; } = 200_000;

    /// <summary>Generate for every listed stream whether or not anyone subscribes, as the real market does
    /// (a recorder's downtime then really misses events). Off: only subscribed streams are generated.</summary>
    public bool AllStreamsActive { get; set; }

    /// <summary>The server closes a connection this long after it opened, as Binance does at 24 h (0: never).</summary>
    public double MaxConnectionLifetimeSeconds { get; set; }

    /// <summary>Fault: the server pings this often (Binance: every 3 minutes); a few ms is a ping storm. 0: 3 minutes.</summary>
    public int PingIntervalMs { get; set; }

    /// <summary>Fault: every REST answer is delayed this long.</summary>
    public int RestDelayMs { get; set; }

    /// <summary>Fault: every Nth frame to a client is sent twice (0: never).</summary>
    public int DuplicateEvery { get; set; }

    /// <summary>Fault: REST aggTrades leaves out trades that were withheld from the stream, so backfill cannot recover them.</summary>
    public bool RestForgetsWithheld { get; set; }

    /// <summary>How depth snapshots meet the diff stream: by default each form the live exchange has, in turn.</summary>
    public SnapshotJoin SnapshotJoin { get; set; } = SnapshotJoin.Cycle;

    /// <summary>aggTrades kept per symbol for the REST endpoint.</summary>
    public int TradeHistory { get; set; } = 200_000;

    /// <summary>Keep every delivered event in memory, and each depth book after every diff (tests compare them row by row,
    /// and books at past instants).</summary>
    public bool RecordEvents { get; set; }
}
