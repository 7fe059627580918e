using OrderBookIngestor.Exchange;

namespace OrderBookIngestor.Configuration;

/// <summary>Checks options before anything connects. Every message names the setting and the fix.</summary>
public static class OptionsValidator
{
    public static IReadOnlyList<string> Validate(IngestorOptions o, bool requireDatabase = true)
    {
        var errors = new List<string>();
        if (requireDatabase && string.IsNullOrWhiteSpace(o.Database))
        {
            errors.Add("Database: no database given. Set ORDERBOOK_DATABASE (preferred: keeps the password off the command line), --database, or \"Database\" in appsettings.json.");
        }
        else if (!string.IsNullOrWhiteSpace(o.Database))
        {
            try
            {
                _ = DatabaseConnection.ToNpgsql(o.Database);
            }
            catch (ConfigurationException ex)
            {
                errors.Add(ex.Message);
            }
        }

        if (o.Symbols.Count == 0)
        {
            errors.Add("Symbols: empty. Give --symbols BTCUSDT,ETHUSDT or --symbols ALL.");
        }
        else if (!(o.Symbols.Count == 1 && IsAll(o.Symbols[0])))
        {
            foreach (var s in o.Symbols)
            {
                if (!SymbolNames.IsValid(s.ToUpperInvariant()))
                {
                    errors.Add($"Symbols: '{s}' is not a Binance symbol (letters and digits only, e.g. BTCUSDT).");
                }
            }
        }

        if (o.Channels.Count == 0)
        {
            errors.Add($"Channels: empty. Choose from {string.Join(", ", MarketChannels.All.Select(c => c.StreamSuffix()))}.");
        }

        foreach (var c in o.Channels)
        {
            if (!MarketChannels.TryParse(c, out _) && !MarketChannels.IsPolled(c))
            {
                errors.Add($"Channels: '{c}' is not supported. Choose from {string.Join(", ", MarketChannels.All.Select(x => x.StreamSuffix()).Append(MarketChannels.OpenInterest))}.");
            }
        }

        if (o.Channels.Count > 0 && o.Channels.All(MarketChannels.IsPolled))
        {
            errors.Add("Channels: openInterest is polled beside the streams; choose at least one stream as well (bookTicker, aggTrade, markPrice, ...).");
        }

        if (o.Channels.Count(c => MarketChannels.TryParse(c, out var ch) && ch.IsMarkPrice()) > 1)
        {
            errors.Add("Channels: choose one mark price stream (markPrice, every second, or markPrice@3s); they carry the same values.");
        }

        if (o.Channels.Count(c => MarketChannels.TryParse(c, out var ch) && ch.IsDepth()) > 1)
        {
            errors.Add("Channels: choose one depth stream (depth, depth@500ms or depth@100ms); they carry the same book at different speeds.");
        }

        Range(errors, nameof(o.Shards), o.Shards, 1, 64);
        Range(errors, nameof(o.TopLevels), o.TopLevels, 1, 100);
        Range(errors, nameof(o.TopIntervalMs), o.TopIntervalMs, 0, 3_600_000);
        Range(errors, nameof(o.BookSnapshotSeconds), o.BookSnapshotSeconds, 0, 86_400);
        Range(errors, nameof(o.OpenInterestSeconds), o.OpenInterestSeconds, 5, 86_400);
        Range(errors, nameof(o.SnapshotLimit), o.SnapshotLimit, 5, 1000);
        Range(errors, nameof(o.MaxConnectionLifetimeSeconds), o.MaxConnectionLifetimeSeconds, 1, 86_000);
        Range(errors, nameof(o.RotationTimeoutSeconds), o.RotationTimeoutSeconds, 1, 600);
        Range(errors, nameof(o.SilentStreamSeconds), o.SilentStreamSeconds, 1, 86_400);
        Range(errors, nameof(o.ExchangeInfoRefreshSeconds), o.ExchangeInfoRefreshSeconds, 1, 86_400);
        Range(errors, nameof(o.SpoolMaxMegabytes), o.SpoolMaxMegabytes, 1, 10_000_000);
        Range(errors, nameof(o.SpoolSegmentMegabytes), o.SpoolSegmentMegabytes, 1, 4096);
        Range(errors, nameof(o.MaxStreamsPerConnection), o.MaxStreamsPerConnection, 1, 1024);
        Range(errors, nameof(o.StreamsPerSubscribe), o.StreamsPerSubscribe, 1, 200);
        Range(errors, nameof(o.SubscribeMessagesPerSecond), o.SubscribeMessagesPerSecond, 1, 9);
        Range(errors, nameof(o.BufferCapacity), o.BufferCapacity, 1_000, 50_000_000);
        Range(errors, nameof(o.BatchMaxRows), o.BatchMaxRows, 1, 1_000_000);
        Range(errors, nameof(o.BatchMaxAgeMs), o.BatchMaxAgeMs, 1, 60_000);
        Range(errors, nameof(o.BatchTargetRows), o.BatchTargetRows, 1, 1_000_000);
        Range(errors, nameof(o.NoDataTimeoutSeconds), o.NoDataTimeoutSeconds, 1, 3600);
        Range(errors, nameof(o.ReadCoalesceMs), o.ReadCoalesceMs, 0, 100);
        Range(errors, nameof(o.HeapSlackMegabytes), o.HeapSlackMegabytes, 0, 65_536);
        Range(errors, nameof(o.ReconnectMinDelayMs), o.ReconnectMinDelayMs, 1, 600_000);
        Range(errors, nameof(o.ReconnectMaxDelayMs), o.ReconnectMaxDelayMs, o.ReconnectMinDelayMs, 3_600_000);
        Range(errors, nameof(o.StableConnectionSeconds), o.StableConnectionSeconds, 1, 86_400);
        Range(errors, nameof(o.MaxFrameBytes), o.MaxFrameBytes, 4096, 64 << 20);
        Range(errors, nameof(o.SummaryIntervalSeconds), o.SummaryIntervalSeconds, 0, 86_400);
        Range(errors, nameof(o.DrainTimeoutSeconds), o.DrainTimeoutSeconds, 1, 3600);
        Range(errors, nameof(o.ReadApiMaxConcurrent), o.ReadApiMaxConcurrent, 0, 64);
        Range(errors, nameof(o.ReadApiStatementTimeoutMs), o.ReadApiStatementTimeoutMs, 100, 600_000);
        Range(errors, nameof(o.LogRetainedFiles), o.LogRetainedFiles, 1, 3650);
        Range(errors, nameof(o.MaxBackfillTrades), o.MaxBackfillTrades, 0, 10_000_000);
        Range(errors, nameof(o.RestWeightPerMinute), o.RestWeightPerMinute, 20, 2400);
        Range(errors, nameof(o.RestMaxInFlight), o.RestMaxInFlight, 1, 16);
        Range(errors, nameof(o.MaintenanceIntervalSeconds), o.MaintenanceIntervalSeconds, 10, 86_400);
        Range(errors, nameof(o.RollupIntervalMs), o.RollupIntervalMs, 0, 3_600_000);
        if (!string.Equals(o.StorageTier, StorageTiers.Auto, StringComparison.Ordinal) && !StorageTiers.All.Contains(o.StorageTier))
        {
            errors.Add($"StorageTier: '{o.StorageTier}' is not one of auto, {string.Join(", ", StorageTiers.All)}.");
        }

        if (!InstanceSplit.TryParse(o.Instance, out _))
        {
            errors.Add($"Instance: '{o.Instance}' is not K/N with 0 <= K < N <= 1024 (e.g. --instance 0/2 and --instance 1/2 for two daemons).");
        }

        foreach (var (table, days) in o.RetentionDays)
        {
            if (!StorageLayout.IsKnown(table))
            {
                errors.Add($"RetentionDays: unknown table '{table}'; use {string.Join(", ", StorageLayout.Tables.Select(t => t.Table))}.");
            }
            else if (days is < 0 or > 36_500)
            {
                errors.Add($"RetentionDays: {table}={days} is out of range; use days from 1 to 36500, or 0 to keep forever.");
            }
        }

        foreach (var (table, hours) in o.ChunkHours)
        {
            if (!StorageLayout.IsKnown(table))
            {
                errors.Add($"ChunkHours: unknown table '{table}'; use {string.Join(", ", StorageLayout.Tables.Select(t => t.Table))}.");
            }
            else if (hours < 1 || hours > 24 * 366 || (hours < 24 ? 24 % hours != 0 : hours % 24 != 0))
            {
                errors.Add($"ChunkHours: {table}={hours} must divide a day (1, 2, 3, 4, 6, 8, 12) or be whole days (24, 48, ..., 168).");
            }
        }

        foreach (var spec in StorageLayout.Tables)
        {
            var days = StorageLayout.RetentionDays(o, spec);
            if (days > 0 && days * 24 < StorageLayout.ChunkHours(o, spec))
            {
                errors.Add($"RetentionDays: {spec.Table} keeps {days} day(s), less than one partition of {StorageLayout.ChunkHours(o, spec)} h; raise it or lower ChunkHours.");
            }
        }

        if (o.BatchMaxRows > o.BufferCapacity)
        {
            errors.Add($"BatchMaxRows ({o.BatchMaxRows}) is larger than BufferCapacity ({o.BufferCapacity}); lower the batch or raise the buffer.");
        }

        Url(errors, nameof(o.WsUrl), o.WsUrl, "ws", "wss");
        Url(errors, nameof(o.RestUrl), o.RestUrl, "http", "https");
        if (!string.Equals(o.Http, "none", StringComparison.OrdinalIgnoreCase) && !TryParseHostPort(o.Http, out _, out _))
        {
            errors.Add($"Http: '{o.Http}' is not host:port (e.g. 127.0.0.1:9470) or \"none\".");
        }

        if (!Enum.TryParse<Serilog.Events.LogEventLevel>(o.LogLevel, ignoreCase: true, out _))
        {
            errors.Add($"LogLevel: '{o.LogLevel}' is not one of Verbose, Debug, Information, Warning, Error, Fatal.");
        }

        return errors;
    }

    public static bool IsAll(string symbol) => string.Equals(symbol, "ALL", StringComparison.OrdinalIgnoreCase);

    public static bool TryParseHostPort(string text, out string host, out int port)
    {
        host = "";
        port = 0;
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), out port) || port is < 0 or > 65535)
        {
            return false;
        }

        host = text[..colon].Trim('[', ']');
        return host.Length > 0;
    }

    private static void Range(List<string> errors, string name, int value, int min, int max)
    {
        if (value < min || value > max)
        {
            errors.Add($"{name}: {value} is out of range; use a value from {min} to {max}.");
        }
    }

    private static void Url(List<string> errors, string name, string value, params string[] schemes)
    {
        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || !schemes.Contains(uri.Scheme))
        {
            errors.Add($"{name}: '{value}' is not an absolute {string.Join(" or ", schemes)} URL.");
        }
    }
}
