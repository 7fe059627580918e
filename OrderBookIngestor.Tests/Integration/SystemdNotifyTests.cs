using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using Npgsql;
using OrderBookIngestor.Simulator;
using OrderBookIngestor.Tests.Support;

namespace OrderBookIngestor.Tests.Integration;

/// <summary>The sd_notify datagrams, received on a real unix socket the way systemd receives them.</summary>
public sealed class SystemdNotifyTests : DatabaseTest, IDisposable
{
    private string _socketPath = "";
    private Socket _socket = null!;
    private readonly ConcurrentQueue<string> _received = new();
    private CancellationTokenSource _stop = null!;
    private Task _listener = null!;

    [SetUp]
    public void StartListening()
    {
        _socketPath = Path.Combine(Path.GetTempPath(), $"obi-notify-{Guid.NewGuid():N}.sock");
        _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        _socket.Bind(new UnixDomainSocketEndPoint(_socketPath));
        _stop = new CancellationTokenSource();
        _listener = Task.Run(async () =>
        {
            var buffer = new byte[8192];
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    var n = await _socket.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                    _received.Enqueue(Encoding.UTF8.GetString(buffer, 0, n));
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        });
    }

    [TearDown]
    public async Task StopListening()
    {
        await _stop.CancelAsync();
        await _listener;
        _socket.Dispose();
        File.Delete(_socketPath);
        _stop.Dispose();
    }

    public void Dispose()
    {
        _socket?.Dispose();
        _stop?.Dispose();
    }

    private int Count(string line) => _received.Count(d => d.Split('\n').Contains(line));

    [Test]
    public async Task Notify_ReadyStatusWatchdogStopping_AndTheWatchdogStopsWhileThePipelineIsStuck()
    {
        var time = new ManualTimeProvider(DateTimeOffset.UtcNow);
        var env = new Dictionary<string, string> { ["NOTIFY_SOCKET"] = _socketPath, ["WATCHDOG_USEC"] = "4000000" };
        var sim = new SimulatorOptions { Symbols = 1, Rate = 1_000, Seed = 31, WaitForStreams = 2 };
        var h = await Harness.StartAsync(Db, sim, o => o.BatchMaxAgeMs = 50, time, name => env.GetValueOrDefault(name));
        try
        {
            await Harness.WaitUntilAsync(() => Count("READY=1") == 1, TimeSpan.FromSeconds(20), () => "no READY=1");
            Assert.That(_received.First(d => d.Contains("READY=1", StringComparison.Ordinal)), Does.Contain("STATUS=msgs"));

            // Healthy: every 2 s (half of WatchdogSec) a ping with a fresh status.
            await Harness.WaitUntilAsync(() =>
            {
                time.Advance(TimeSpan.FromMilliseconds(500));
                return Count("WATCHDOG=1") >= 3 && h.RowsCommitted > 50;
            }, TimeSpan.FromSeconds(20), () => $"{Count("WATCHDOG=1")} pings");

            // Stuck: an exclusive lock makes the next COPY into book_ticker hang; rows pile up behind it.
            await using var blocker = await Db.DataSource.OpenConnectionAsync();
            await using var tx = await blocker.BeginTransactionAsync();
            await using (var lockCmd = new NpgsqlCommand("LOCK TABLE marketdata.book_ticker IN ACCESS EXCLUSIVE MODE", blocker, tx))
            {
                await lockCmd.ExecuteNonQueryAsync();
            }

            var stalledAt = h.Metrics.BookTicker.LastAttemptUnixMs;
            await Harness.WaitUntilAsync(() =>
            {
                time.Advance(TimeSpan.FromMilliseconds(500));
                return h.Metrics.BookTicker.BufferDepth() > 0 && time.GetUtcNow().ToUnixTimeMilliseconds() - stalledAt > 5_000;
            }, TimeSpan.FromSeconds(20), () => "no stall");
            var pingsWhenStuck = Count("WATCHDOG=1");
            for (var i = 0; i < 12; i++)
            {
                time.Advance(TimeSpan.FromMilliseconds(500));
                await Task.Delay(20);
            }

            Assert.That(Count("WATCHDOG=1"), Is.EqualTo(pingsWhenStuck), "no ping while the pipeline is stuck");
            Assert.That(_received.Last(), Does.StartWith("STATUS="), "status keeps flowing");

            // Unstuck: the COPY completes and the pings come back.
            await tx.RollbackAsync();
            await Harness.WaitUntilAsync(() =>
            {
                time.Advance(TimeSpan.FromMilliseconds(500));
                return Count("WATCHDOG=1") > pingsWhenStuck;
            }, TimeSpan.FromSeconds(20), () => "pings did not resume");
        }
        finally
        {
            await h.DisposeAsync();
        }

        Assert.That(Count("STOPPING=1"), Is.EqualTo(1));
    }

    [Test]
    public void Notifier_WithoutNotifySocket_DoesNothing()
    {
        using var notifier = new Hosting.SystemdNotifier(null);
        Assert.That(notifier.Enabled, Is.False);
        Assert.That(notifier.Notify("READY=1"), Is.False);
    }

    [TestCase("30000000", null, 30.0)]
    [TestCase("30000000", "1", null)]
    [TestCase("0", null, null)]
    [TestCase(null, null, null)]
    public void WatchdogInterval_ComesFromWatchdogUsecForThisProcessOnly(string? usec, string? pid, double? seconds)
    {
        var env = new Dictionary<string, string?> { ["WATCHDOG_USEC"] = usec, ["WATCHDOG_PID"] = pid };
        Assert.That(Hosting.SystemdNotifier.WatchdogInterval(n => env.GetValueOrDefault(n), pid: 4242)?.TotalSeconds, Is.EqualTo(seconds));
    }
}
