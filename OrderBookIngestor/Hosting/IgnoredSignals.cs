using System.Globalization;

namespace OrderBookIngestor.Hosting;

/// <summary>
/// Signals the process was started with set to "ignore" (the SigIgn mask in /proc/self/status). A process started
/// under nohup, or by a supervisor that ignores SIGHUP, inherits the ignore, and .NET then never runs a SIGHUP
/// handler: a reload (systemctl reload, kill -HUP) would do nothing and say nothing. systemd starts services with
/// default dispositions.
/// </summary>
internal static class IgnoredSignals
{
    public const int SigHup = 1;

    /// <summary>Whether <paramref name="signal"/> is in the SigIgn mask of a /proc/PID/status text; false when the text
    /// has no readable mask.</summary>
    public static bool IsIgnored(string? status, int signal)
    {
        foreach (var line in (status ?? "").Split('\n'))
        {
            if (line.StartsWith("SigIgn:", StringComparison.Ordinal)
                && ulong.TryParse(line.AsSpan("SigIgn:".Length).Trim(), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var mask))
            {
                return signal is >= 1 and <= 64 && (mask & (1UL << (signal - 1))) != 0;
            }
        }

        return false;
    }

    /// <summary>This process's own mask; false where /proc cannot be read.</summary>
    public static bool IsIgnoredHere(int signal)
    {
        try
        {
            return IsIgnored(File.ReadAllText("/proc/self/status"), signal);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
