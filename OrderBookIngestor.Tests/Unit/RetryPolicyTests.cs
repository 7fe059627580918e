using OrderBookIngestor.Resilience;

namespace OrderBookIngestor.Tests.Unit;

public sealed class RetryPolicyTests
{
    private static readonly TimeSpan Min = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan Max = TimeSpan.FromSeconds(30);

    [Test]
    public void Backoff_CeilingDoublesUntilTheCap()
    {
        var backoff = new RetryPolicy(Min, Max, new Random(1));
        var ceilings = new List<TimeSpan>();
        for (var i = 0; i < 10; i++)
        {
            ceilings.Add(backoff.Ceiling);
            backoff.Next();
        }

        Assert.That(ceilings.Take(5), Is.EqualTo(new[] { 250, 500, 1000, 2000, 4000 }.Select(ms => TimeSpan.FromMilliseconds(ms))));
        Assert.That(ceilings[^1], Is.EqualTo(Max));
    }

    [Test]
    public void Backoff_DelaysStayWithinMinAndCeilingAndAreJittered()
    {
        var backoff = new RetryPolicy(Min, Max, new Random(7));
        for (var i = 0; i < 8; i++)
        {
            backoff.Next();
        }

        var delays = Enumerable.Range(0, 200).Select(_ => backoff.Next()).ToList();
        Assert.That(delays.All(d => d >= Min && d <= Max), Is.True);
        Assert.That(delays.Distinct().Count(), Is.GreaterThan(150), "full jitter spreads reconnects out");
    }

    [Test]
    public void Backoff_ResetStartsOverFromTheMinimum()
    {
        var backoff = new RetryPolicy(Min, Max, new Random(3));
        for (var i = 0; i < 6; i++)
        {
            backoff.Next();
        }

        backoff.Reset();
        Assert.That(backoff.Ceiling, Is.EqualTo(Min));
        Assert.That(backoff.Next(), Is.EqualTo(Min));
    }

    [Test]
    public void Backoff_RejectsAnInvertedRange()
        => Assert.Throws<ArgumentOutOfRangeException>(() => _ = new RetryPolicy(Max, Min, new Random(1)));
}
