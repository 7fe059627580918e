using System.Net;
using System.Net.Sockets;

namespace OrderBookIngestor.Tests.Support;

/// <summary>A loopback TCP relay the test can cut, as a network partition or a dead database would.</summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly string _host;
    private readonly int _port;
    private readonly List<TcpClient> _open = [];
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private volatile bool _cut;
    private int _connections;
    private int _cutAfter = int.MaxValue;

    public TcpProxy(string host, int port)
    {
        _host = host;
        _port = port;
        _listener.Start();
        _accepting = Task.Run(AcceptAsync);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Drops every relayed connection and refuses new ones until <see cref="Restore"/>.</summary>
    public void Cut()
    {
        _cut = true;
        lock (_gate)
        {
            foreach (var c in _open)
            {
                Reset(c);
            }

            _open.Clear();
        }
    }

    public void Restore()
    {
        _cutAfter = int.MaxValue;
        _cut = false;
    }

    /// <summary>Connections clients have opened to the proxy, relayed or refused: what a database would see as attempts.</summary>
    public int Connections => Volatile.Read(ref _connections);

    /// <summary>Relays <paramref name="more"/> further connections, then behaves as <see cref="Cut"/> (for a failure at an exact point).</summary>
    public void CutAfter(int more) => _cutAfter = Connections + more;

    /// <summary>Closes with RST (linger 0), as a dead peer or a partition looks to the other side.</summary>
    private static void Reset(TcpClient client)
    {
        try
        {
            if (client.Client is { } socket)
            {
                socket.LingerState = new LingerOption(true, 0);
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // already gone
        }

        client.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            if (Interlocked.Increment(ref _connections) > _cutAfter)
            {
                _cut = true;
            }

            if (_cut)
            {
                Reset(client);
                continue;
            }

            _ = Task.Run(() => RelayAsync(client));
        }
    }

    private async Task RelayAsync(TcpClient client)
    {
        var upstream = new TcpClient();
        try
        {
            await upstream.ConnectAsync(_host, _port);
            lock (_gate)
            {
                _open.Add(client);
                _open.Add(upstream);
            }

            await Task.WhenAny(client.GetStream().CopyToAsync(upstream.GetStream()), upstream.GetStream().CopyToAsync(client.GetStream()));
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            // one side went away
        }
        finally
        {
            client.Dispose();
            upstream.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        Cut();
        await _accepting;
        _stop.Dispose();
    }
}
