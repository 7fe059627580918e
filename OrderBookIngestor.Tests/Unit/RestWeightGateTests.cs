using System.Net;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Tests.Support;

namespace OrderBookIngestor.Tests.Unit;

public sealed class RestWeightGateTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 10, TimeSpan.Zero);

    [Test]
    public async Task Gate_WaitsForTheNextMinuteWhenTheBudgetIsSpent()
    {
        var time = new ManualTimeProvider(Start);
        using var gate = new RestWeightGate(budgetPerMinute: 100, maxInFlight: 4, time);
        (await gate.AcquireAsync(60, CancellationToken.None)).Dispose();
        var second = gate.AcquireAsync(60, CancellationToken.None);
        Assert.That(await time.WaitForTimerAsync(), Is.EqualTo(Start.AddSeconds(50).AddMilliseconds(10)), "60 + 60 > 100: it waits for the next minute");
        Assert.That(second.IsCompleted, Is.False);
        time.Advance(TimeSpan.FromSeconds(51));
        (await second.WaitAsync(TimeSpan.FromSeconds(5))).Dispose();
        Assert.That(gate.UsedThisMinute, Is.EqualTo(60));
    }

    [Test]
    public async Task Gate_LearnsTheUsedWeightFromTheExchangeHeader()
    {
        var time = new ManualTimeProvider(Start);
        using var gate = new RestWeightGate(100, 4, time);
        using var response = new HttpResponseMessage(HttpStatusCode.OK);
        response.Headers.Add("X-MBX-USED-WEIGHT-1M", "95");
        gate.Observe(response);
        var next = gate.AcquireAsync(20, CancellationToken.None);
        Assert.That(await time.WaitForTimerAsync(), Is.EqualTo(Start.AddSeconds(50).AddMilliseconds(10)), "other clients on this IP used the budget");
        Assert.That(next.IsCompleted, Is.False);
        time.Advance(TimeSpan.FromMinutes(1));
        (await next.WaitAsync(TimeSpan.FromSeconds(5))).Dispose();
    }

    [TestCase(429)]
    [TestCase(418)]
    public async Task Gate_StopsUntilRetryAfterOnRateLimitOrBan(int status)
    {
        var time = new ManualTimeProvider(Start);
        using var gate = new RestWeightGate(1000, 4, time);
        using var response = new HttpResponseMessage((HttpStatusCode)status);
        response.Headers.RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(TimeSpan.FromSeconds(120));
        gate.Observe(response);
        Assert.That(gate.BlockedUntil, Is.EqualTo(Start.AddSeconds(120)));
        var next = gate.AcquireAsync(1, CancellationToken.None);
        Assert.That(await time.WaitForTimerAsync(), Is.EqualTo(Start.AddSeconds(120)), "parked until Retry-After");
        time.Advance(TimeSpan.FromSeconds(119));
        Assert.That(next.IsCompleted, Is.False);
        time.Advance(TimeSpan.FromSeconds(2));
        (await next.WaitAsync(TimeSpan.FromSeconds(5))).Dispose();
    }

    [Test]
    public async Task Gate_LimitsRequestsInFlight()
    {
        var time = new ManualTimeProvider(Start);
        using var gate = new RestWeightGate(1000, maxInFlight: 1, time);
        var first = await gate.AcquireAsync(1, CancellationToken.None);
        var second = gate.AcquireAsync(1, CancellationToken.None);
        // Waiting on the in-flight semaphore, not the clock: it stays pending until the first is released,
        // however far the clock moves.
        time.Advance(TimeSpan.FromMinutes(10));
        Assert.That(second.IsCompleted, Is.False);
        Assert.That(time.NextDue, Is.Null, "no timer: it waits for the first request, not for time");
        first.Dispose();
        (await second.WaitAsync(TimeSpan.FromSeconds(5))).Dispose();
    }
}
