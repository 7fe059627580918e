namespace OrderBookIngestor.Hosting;

/// <summary>
/// Runs socket completions on .NET's epoll threads (then one per core) instead of handing each one to a thread-pool
/// worker. Every WebSocket frame used to cost two thread wake-ups (the epoll thread, then a worker); at the rates
/// users run, those wake-ups were most of the daemon's CPU (perf: the kernel's context switching, not our code).
/// Measured with 50 symbols × bookTicker+aggTrade from the simulator (2 cores, PostgreSQL beside it): 2,000 msg/s
/// from 5.3–5.4 % to 3.3–4.0 % of a core, 20,000 msg/s from 18.2 % to 15.2–16.2 %.
/// What runs on those threads is short: parse a frame and write it to a bounded channel (never a blocking wait), or
/// finish a database round trip. Setting DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=0 in the environment turns
/// it off.
/// </summary>
public static class SocketCompletions
{
    public const string Variable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>Must run before the first socket is created: .NET reads the variable once, when its socket engine starts.</summary>
    public static void PreferInline()
    {
        if (Environment.GetEnvironmentVariable(Variable) is null)
        {
            Environment.SetEnvironmentVariable(Variable, "1");
        }
    }
}
