namespace OrderBookIngestor.Configuration;

/// <summary>The storage tiers, best first. Chosen at the first migrate and recorded in marketdata.storage_settings.</summary>
public static class StorageTiers
{
    /// <summary>TimescaleDB with its Community features: compression, retention policies, continuous aggregates.</summary>
    public const string Timescale = "timescaledb";

    /// <summary>TimescaleDB with only Apache-licensed features: hypertables; retention and rollups by the daemon.</summary>
    public const string TimescaleApache = "timescaledb-apache";

    /// <summary>Plain PostgreSQL with native range partitions maintained by the daemon.</summary>
    public const string Postgres = "postgres";

    /// <summary>Citus: plain partitioning, event tables distributed by symbol_id.</summary>
    public const string Citus = "citus";

    public const string Auto = "auto";

    public static readonly string[] All = [Timescale, TimescaleApache, Postgres, Citus];

    /// <summary>Tiers whose bt_1s/trade_1s rollups and retention the daemon's maintenance loop runs (derivatives_1s: every tier).</summary>
    public static bool DaemonMaintained(string tier) => tier != Timescale;
}

/// <summary>The time-partitioned tables, their time column and default partition width and retention.</summary>
public static class StorageLayout
{
    public sealed record TableSpec(string Table, string TimeColumn, int DefaultChunkHours, int DefaultRetentionDays);

    /// <summary>
    /// Widths sized for the volumes: bookTicker and depth diffs are the bulk (a liquid symbol sends tens of
    /// updates per second), trades, snapshots and samples are one to two orders smaller, rollups, mark price, liquidations and open
    /// interest one row per symbol-second or fewer. Retention keeps a month of raw order-book data, a quarter of trades and samples and a
    /// year of rollups, so months unattended do not fill a disk; 0 keeps rows forever.
    /// </summary>
    public static readonly IReadOnlyList<TableSpec> Tables =
    [
        new("book_ticker", "ts_exchange", 6, 30),
        new("trades", "ts_exchange", 24, 90),
        new("depth_events", "ts_exchange", 6, 30),
        new("book_snapshots", "ts_exchange", 24, 30),
        new("orderbook_top", "ts", 24, 90),
        new("mark_price", "ts_exchange", 168, 365),
        new("liquidations", "ts_exchange", 168, 365),
        new("open_interest", "ts_exchange", 168, 365),
        new("bt_1s", "bucket", 168, 365),
        new("trade_1s", "bucket", 168, 365),
        new("derivatives_1s", "bucket", 168, 365),
    ];

    public static bool IsKnown(string table) => Tables.Any(t => t.Table == table);

    public static int ChunkHours(IngestorOptions options, TableSpec spec)
        => options.ChunkHours.TryGetValue(spec.Table, out var h) ? h : spec.DefaultChunkHours;

    public static int RetentionDays(IngestorOptions options, TableSpec spec)
        => options.RetentionDays.TryGetValue(spec.Table, out var d) ? d : spec.DefaultRetentionDays;
}
