using System.Diagnostics;
using System.Globalization;
using System.Net.WebSockets;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Simulator;

namespace OrderBookIngestor.Cli;

/// <summary>
/// How fast the simulator can offer events: `simulate` in its own process with 50 symbols × bookTicker+aggTrade,
/// read by four combined-stream clients here that discard every frame (two per route, as a two-shard daemon connects).
/// Each step asks for a rate for a few seconds and times how long delivering every event takes; the simulator
/// keeps up while achieved ≈ offered. The load generator of scripts/bench.sh, measured without the daemon.
/// </summary>
internal static class SimulatorBench
{
    /// <summary>How often the ledger is read. Each read is an HTTP request that serialises every stream's totals inside
    /// the simulator's process, so reading it often adds to the very CPU being measured.</summary>
    private static readonly TimeSpan PollEvery = TimeSpan.FromMilliseconds(100);

    public static async Task RunAsync(IReadOnlyList<int> rates, double seconds, CancellationToken ct)
    {
        foreach (var rate in rates)
        {
            var (achieved, cpu) = await StepAsync(rate, seconds, ct).ConfigureAwait(false);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"simulator (50 symbols x bookTicker+aggTrade, 4 combined-stream clients): offered {rate:N0}/s, delivered {achieved:N0}/s, simulator CPU {cpu:F2} s per million events{(achieved < 0.9 * rate ? " (cannot keep up)" : "")}"));
            if (achieved < 0.9 * rate)
            {
                return;
            }
        }
    }

    private static async Task<(double Achieved, double CpuPerMillion)> StepAsync(int rate, double seconds, CancellationToken ct)
    {
        var events = (long)(rate * seconds);
        var port = FreePort();
        // The simulator in its own process (the `simulate` command bench.sh runs), so that its CPU is its own.
        using var simulator = Process.Start(new ProcessStartInfo(Environment.ProcessPath!)
        {
            ArgumentList = { "simulate", "--port", $"{port}", "--symbols", "50", "--rate", $"{rate}", "--events", $"{events}", "--wait-streams", "100" },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        _ = simulator.StandardOutput.ReadToEndAsync(ct);
        _ = simulator.StandardError.ReadToEndAsync(ct);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var clients = new List<Task>();
        try
        {
            await WaitForPingAsync(http, ct).ConfigureAwait(false);
            foreach (var channel in new[] { MarketChannel.BookTicker, MarketChannel.AggTrade })
            {
                foreach (var half in SymbolUniverse.Create(50).Chunk(25))
                {
                    var streams = string.Join('/', half.Select(s => MarketChannels.StreamName(s.Symbol, channel)));
                    clients.Add(DiscardAsync(new Uri($"ws://127.0.0.1:{port}/{channel.Route().PathSegment()}/stream?streams={streams}"), stop.Token));
                }
            }

            // The first third of the step warms the simulator up (JIT, tiering); the rest is measured.
            var deadline = Stopwatch.StartNew();
            var limit = TimeSpan.FromSeconds((seconds * 10) + 10);
            var ledger = (Generated: 0L, Delivered: 0L);
            while (deadline.Elapsed < limit && (ledger = await LedgerAsync(http, ct).ConfigureAwait(false)).Delivered < events / 3)
            {
                await Task.Delay(PollEvery, ct).ConfigureAwait(false);
            }

            simulator.Refresh();
            var cpu0 = simulator.TotalProcessorTime;
            var delivered0 = ledger.Delivered;
            var clock = Stopwatch.StartNew();
            while (deadline.Elapsed < limit && (ledger = await LedgerAsync(http, ct).ConfigureAwait(false)).Delivered < events)
            {
                await Task.Delay(PollEvery, ct).ConfigureAwait(false);
            }

            var elapsed = clock.Elapsed.TotalSeconds;
            simulator.Refresh();
            var cpu = (simulator.TotalProcessorTime - cpu0).TotalSeconds;
            var measured = ledger.Delivered - delivered0;
            return (measured / elapsed, cpu / (measured / 1e6));
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(clients).ConfigureAwait(false);
            simulator.Kill();
            await simulator.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task WaitForPingAsync(HttpClient http, CancellationToken ct)
    {
        for (var i = 0; ; i++)
        {
            try
            {
                using var response = await http.GetAsync(new Uri("/fapi/v1/ping", UriKind.Relative), ct).ConfigureAwait(false);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException) when (i < 200)
            {
                // not listening yet
            }

            await Task.Delay(50, ct).ConfigureAwait(false);
        }
    }

    private static async Task<(long Generated, long Delivered)> LedgerAsync(HttpClient http, CancellationToken ct)
    {
        var body = await http.GetByteArrayAsync(new Uri("/sim/ledger", UriKind.Relative), ct).ConfigureAwait(false);
        using var doc = System.Text.Json.JsonDocument.Parse(body);
        return (doc.RootElement.GetProperty("generated").GetInt64(), doc.RootElement.GetProperty("delivered").GetInt64());
    }

    private static async Task DiscardAsync(Uri uri, CancellationToken ct)
    {
        using var socket = new ClientWebSocket();
        var buffer = new byte[64 * 1024];
        try
        {
            await socket.ConnectAsync(uri, ct).ConfigureAwait(false);
            while (true)
            {
                var r = await socket.ReceiveAsync(buffer.AsMemory(), ct).ConfigureAwait(false);
                if (r.MessageType == WebSocketMessageType.Close)
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or WebSocketException)
        {
            // the step is over
        }
    }
}
