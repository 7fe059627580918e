using System.Net.Sockets;
using Npgsql;

namespace OrderBookIngestor.Storage;

/// <summary>
/// The one definition of "the database (or the way to it) is in trouble, try again later", shared by every
/// loop that writes. A timed-out call surfaces as OperationCanceledException; callers exclude their own
/// shutdown token before deciding.
/// </summary>
public static class DatabaseErrors
{
    public static bool IsTransient(Exception ex) => ex is NpgsqlException or IOException or SocketException or TimeoutException
        or InvalidOperationException or OperationCanceledException;
}
