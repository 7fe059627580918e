using OrderBookIngestor.Hosting;

namespace OrderBookIngestor.Tests.Unit;

public sealed class IgnoredSignalsTests
{
    [Test]
    public void TheSigIgnMask_SaysWhetherSighupIsIgnored()
    {
        // As /proc/PID/status prints it under nohup (SIGHUP, bit 0) and without.
        const string nohup = "Name:\torderbook-ingestor\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000001001\nSigCgt:\t0000000180004a02\n";
        const string plain = "Name:\torderbook-ingestor\nSigIgn:\t0000000000001000\nSigCgt:\t0000000180004a03\n";
        Assert.That(IgnoredSignals.IsIgnored(nohup, IgnoredSignals.SigHup), Is.True);
        Assert.That(IgnoredSignals.IsIgnored(plain, IgnoredSignals.SigHup), Is.False);
        Assert.That(IgnoredSignals.IsIgnored(plain, 13), Is.True, "SIGPIPE, bit 12");
        Assert.That(IgnoredSignals.IsIgnored("SigIgn:\tzz\n", IgnoredSignals.SigHup), Is.False, "an unreadable mask");
        Assert.That(IgnoredSignals.IsIgnored(null, IgnoredSignals.SigHup), Is.False);
    }
}
