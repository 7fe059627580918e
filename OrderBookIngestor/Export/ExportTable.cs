using System.Globalization;
using OrderBookIngestor.Hosting;

namespace OrderBookIngestor.Export;

/// <summary>
/// One table as `export` writes it: the query for one symbol-day (parameters $1 symbol id, $2 day start, $3 day
/// end; rows oldest first), the query whose answer changes whenever the stored rows of that symbol-day do (so a
/// re-run knows a file is still current), and the feed_gaps stream kinds whose holes concern it.
/// </summary>
/// <param name="Name">The name in --tables, in file paths and in the files' metadata.</param>
/// <param name="GapKinds">Stream kinds (the part of feed_gaps.stream after the symbol, up to a second '@').</param>
public sealed record ExportTable(string Name, string Select, string Fingerprint, string[] GapKinds)
{
    /// <summary>Exported when --tables is not given: every table the recorder writes from the exchange.</summary>
    public static readonly string[] Defaults = ["book_ticker", "trades", "depth", "book_snapshots", "mark_price", "liquidations", "open_interest"];

    public static readonly IReadOnlyDictionary<string, ExportTable> All = Build();

    private static Dictionary<string, ExportTable> Build()
    {
        var tables = new Dictionary<string, ExportTable>(StringComparer.Ordinal);
        void Add(ExportTable t) => tables.Add(t.Name, t);

        Add(Raw("book_ticker", "book_ticker", ReadQueries.Types["book_ticker"].Columns, "update_id", "bookTicker"));
        Add(Raw("trades", "trades", ReadQueries.Types["trades"].Columns, "agg_trade_id", "aggTrade"));
        Add(Raw("mark_price", "mark_price",
            "ts_exchange, ts_ingest, mark_price, index_price, est_settle_price, funding_rate, next_funding_time, is_backfilled", null, "markPrice"));
        Add(Raw("liquidations", "liquidations",
            "ts_exchange, ts_trade, ts_ingest, side, order_type, time_in_force, status, orig_qty, price, avg_price, last_filled_qty, filled_qty", "ts_trade", "forceOrder"));
        Add(Raw("open_interest", "open_interest", "ts_exchange, ts_ingest, open_interest", null, "openInterest"));

        // Depth diffs and snapshots hold their levels in arrays. A file gets one row per level instead (the layout of
        // tardis's incremental_book_L2): every reader takes it, and a diff's levels keep their order (bids, then asks,
        // as sent: a later entry for a price in one diff wins). A diff without levels still gets one row, side NULL, so
        // that the update id chain reads on unbroken.
        Add(new ExportTable("depth",
            """
            SELECT x.ts_exchange, x.ts_transaction, x.ts_ingest, x.first_update_id, x.final_update_id, x.prev_final_update_id,
                   l.side, l.price, l.qty
            FROM marketdata.depth_events x
            LEFT JOIN LATERAL (
                SELECT 'bid'::text AS side, b.p AS price, b.q AS qty, 0 AS s, b.o FROM unnest(x.bid_prices, x.bid_qtys) WITH ORDINALITY AS b(p, q, o)
                UNION ALL
                SELECT 'ask'::text, a.p, a.q, 1, a.o FROM unnest(x.ask_prices, x.ask_qtys) WITH ORDINALITY AS a(p, q, o)
            ) l ON true
            WHERE x.symbol_id = $1 AND x.ts_exchange >= $2 AND x.ts_exchange < $3
            ORDER BY x.ts_exchange, x.final_update_id, l.s, l.o
            """,
            RawFingerprint("depth_events"), ["depth"]));
        Add(new ExportTable("book_snapshots",
            """
            SELECT x.ts_exchange, x.ts_ingest, x.last_update_id, x.source, l.side, l.level, l.price, l.qty
            FROM marketdata.book_snapshots x
            LEFT JOIN LATERAL (
                SELECT 'bid'::text AS side, b.o::integer AS level, b.p AS price, b.q AS qty, 0 AS s FROM unnest(x.bid_prices, x.bid_qtys) WITH ORDINALITY AS b(p, q, o)
                UNION ALL
                SELECT 'ask'::text, a.o::integer, a.p, a.q, 1 FROM unnest(x.ask_prices, x.ask_qtys) WITH ORDINALITY AS a(p, q, o)
            ) l ON true
            WHERE x.symbol_id = $1 AND x.ts_exchange >= $2 AND x.ts_exchange < $3
            ORDER BY x.ts_exchange, x.last_update_id, x.source, x.ts_ingest, l.s, l.level
            """,
            RawFingerprint("book_snapshots"), ["depth"]));

        // The rollups, as GET /data serves them. They are rewritten when late batches arrive, so their fingerprint
        // hashes every row (they are small: one row per second at most).
        foreach (var (name, kinds) in new[] { ("bt_1s", new[] { "bookTicker" }), ("trade_1s", ["aggTrade"]), ("derivatives_1s", ["markPrice", "forceOrder", "openInterest"]) })
        {
            var spec = ReadQueries.Types[name];
            Add(new ExportTable(name,
                string.Create(CultureInfo.InvariantCulture, $"SELECT {spec.Columns} FROM marketdata.{spec.Table} x WHERE x.symbol_id = $1 AND x.{spec.Time} >= $2 AND x.{spec.Time} < $3 ORDER BY x.{spec.Time}"),
                string.Create(CultureInfo.InvariantCulture, $"SELECT count(*)::text || '/' || coalesce(sum(hashtext(x::text)::bigint), 0)::text FROM marketdata.{spec.Table} x WHERE x.symbol_id = $1 AND x.{spec.Time} >= $2 AND x.{spec.Time} < $3"),
                kinds));
        }

        return tables;
    }

    /// <summary>A table of rows as the exchange sent them, ordered by exchange time and then <paramref name="key"/>.</summary>
    private static ExportTable Raw(string name, string table, string columns, string? key, string gapKind)
        => new(name,
            string.Create(CultureInfo.InvariantCulture,
                $"SELECT {columns} FROM marketdata.{table} x WHERE x.symbol_id = $1 AND x.ts_exchange >= $2 AND x.ts_exchange < $3 ORDER BY x.ts_exchange{(key is null ? "" : ", x." + key)}"),
            RawFingerprint(table), [gapKind]);

    /// <summary>Rows are only ever added to a raw table (each exactly once, through the batch ledger), so their count
    /// and the latest ingest time change whenever the symbol-day does.</summary>
    private static string RawFingerprint(string table)
        => string.Create(CultureInfo.InvariantCulture,
            $"SELECT count(*)::text || '/' || coalesce((extract(epoch FROM max(x.ts_ingest)) * 1000000)::bigint, 0)::text FROM marketdata.{table} x WHERE x.symbol_id = $1 AND x.ts_exchange >= $2 AND x.ts_exchange < $3");

    /// <summary>feed_gaps.stream is "btcusdt@depth@100ms" from the daemon or the bare "depth" from the seed's collector.</summary>
    public static string StreamKind(string stream)
    {
        var at = stream.IndexOf('@', StringComparison.Ordinal);
        return at < 0 ? stream : stream[(at + 1)..];
    }

    public bool Concerns(string stream)
    {
        var kind = StreamKind(stream);
        return GapKinds.Any(k => kind.StartsWith(k, StringComparison.Ordinal));
    }
}
