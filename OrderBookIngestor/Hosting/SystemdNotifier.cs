using System.Net.Sockets;
using System.Text;

namespace OrderBookIngestor.Hosting;

/// <summary>
/// The sd_notify protocol, written in-house (Microsoft.Extensions.Hosting.Systemd is not in our registry):
/// one datagram per message to the unix socket named by NOTIFY_SOCKET ('@' prefix = abstract namespace).
/// Without NOTIFY_SOCKET every call is a no-op, so the daemon runs the same outside systemd.
/// </summary>
public sealed class SystemdNotifier : IDisposable
{
    private readonly Socket? _socket;
    private readonly UnixDomainSocketEndPoint? _endpoint;
    private readonly Lock _gate = new();

    public SystemdNotifier(string? notifySocket)
    {
        if (string.IsNullOrEmpty(notifySocket))
        {
            return;
        }

        // Abstract socket names start with '@' in the variable and with a NUL byte on the wire.
        var path = notifySocket[0] == '@' ? "\0" + notifySocket[1..] : notifySocket;
        _endpoint = new UnixDomainSocketEndPoint(path);
        _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    }

    public static SystemdNotifier FromEnvironment() => new(Environment.GetEnvironmentVariable("NOTIFY_SOCKET"));

    public bool Enabled => _socket is not null;

    /// <summary>Sends one or more KEY=VALUE lines. Failures are swallowed and counted: systemd being away must not stop recording.</summary>
    public bool Notify(string state)
    {
        if (_socket is null || _endpoint is null)
        {
            return false;
        }

        try
        {
            lock (_gate)
            {
                _socket.SendTo(Encoding.UTF8.GetBytes(state), SocketFlags.None, _endpoint);
            }

            return true;
        }
        catch (SocketException)
        {
            Failures++;
            return false;
        }
    }

    public int Failures { get; private set; }

    /// <summary>The watchdog interval systemd asked for (WATCHDOG_USEC), if it is meant for this process (WATCHDOG_PID).</summary>
    public static TimeSpan? WatchdogInterval(Func<string, string?> env, int pid)
    {
        if (!long.TryParse(env("WATCHDOG_USEC"), out var usec) || usec <= 0)
        {
            return null;
        }

        var forPid = env("WATCHDOG_PID");
        if (!string.IsNullOrEmpty(forPid) && forPid != pid.ToString(System.Globalization.CultureInfo.InvariantCulture))
        {
            return null;
        }

        return TimeSpan.FromMicroseconds(usec);
    }

    public void Dispose() => _socket?.Dispose();
}
