using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using OrderBookIngestor.Feeds;

namespace OrderBookIngestor.Tests.Unit;

/// <summary>
/// The client's HTTP upgrade against a hand-written server on a real socket: what the exchange answers decides
/// whether there is a connection, and the first frames may arrive in the same packet as the 101.
/// </summary>
public sealed class ExchangeSocketTests
{
    [Test]
    public async Task Frames_sent_right_behind_the_101_are_read_and_pings_are_answered()
    {
        await using var server = new OneShotServer(key =>
            Encoding.ASCII.GetBytes("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
                                    $"Sec-WebSocket-Accept: {Accept(key)}\r\n\r\n")
                .Concat(Frame(0x1, "{\"a\":1}"u8)).Concat(Frame(0x9, "hi"u8)).ToArray());

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await using var socket = await ExchangeSocket.ConnectAsync(server.Uri, 4096, 1 << 20, timeout.Token);
        var messages = new List<(WebSocketMessageKind, string)>();
        while (messages.Count < 2 && await socket.ReceiveAsync(timeout.Token))
        {
            while (socket.Reader.TryNext(out var m))
            {
                messages.Add((m.Kind, Encoding.UTF8.GetString(m.Payload)));
                if (m.Kind == WebSocketMessageKind.Ping)
                {
                    await socket.SendPongAsync(m.Payload, CancellationToken.None);
                }
            }
        }

        Assert.That(messages, Is.EqualTo(new[] { (WebSocketMessageKind.Text, "{\"a\":1}"), (WebSocketMessageKind.Ping, "hi") }));
        var request = await server.Request;
        Assert.That(request, Does.StartWith("GET /public/stream?streams=x HTTP/1.1\r\n"));
        Assert.That(request, Does.Contain("Upgrade: websocket").And.Contain("Sec-WebSocket-Version: 13"));

        // The pong comes back masked, with the ping's payload.
        var pong = await server.ReadAsync(8);
        Assert.That(pong[0], Is.EqualTo(0x8A));
        Assert.That(pong[1], Is.EqualTo(0x80 | 2));
        Assert.That(new[] { (byte)(pong[6] ^ pong[2]), (byte)(pong[7] ^ pong[3]) }, Is.EqualTo("hi"u8.ToArray()));
    }

    [Test]
    public void A_refused_upgrade_says_the_status_and_how_long_to_wait()
    {
        using var server = new OneShotServer(_ => "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 120\r\nContent-Length: 0\r\n\r\n"u8.ToArray());
        var ex = Assert.ThrowsAsync<WebSocketException>(() => ExchangeSocket.ConnectAsync(server.Uri, 4096, 1 << 20, CancellationToken.None));
        Assert.That(ex!.Message, Does.Contain("'429'").And.Contain("Retry-After 120 s"));
    }

    [Test]
    public void A_101_that_does_not_answer_our_key_is_refused()
    {
        using var server = new OneShotServer(_ => Encoding.ASCII.GetBytes("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
                                                                         $"Sec-WebSocket-Accept: {Accept("not the key")}\r\n\r\n"));
        var ex = Assert.ThrowsAsync<WebSocketException>(() => ExchangeSocket.ConnectAsync(server.Uri, 4096, 1 << 20, CancellationToken.None));
        Assert.That(ex!.Message, Does.Contain("Sec-WebSocket-Accept"));
    }

    private static string Accept(string key) =>
#pragma warning disable CA5350 // fixed by RFC 6455
        Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
#pragma warning restore CA5350

    private static byte[] Frame(byte opcode, ReadOnlySpan<byte> payload) => [(byte)(0x80 | opcode), (byte)payload.Length, .. payload];

    /// <summary>Accepts one connection, reads the request headers, writes the given answer in one write.</summary>
    private sealed class OneShotServer : IAsyncDisposable, IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly TaskCompletionSource<string> _request = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Task<Socket> _accepted;

        public OneShotServer(Func<string, byte[]> answer)
        {
            _listener.Start();
            Uri = new Uri($"ws://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/public/stream?streams=x");
            _accepted = ServeAsync(answer);
        }

        public Uri Uri { get; }

        public Task<string> Request => _request.Task;

        public async Task<byte[]> ReadAsync(int count)
        {
            var socket = await _accepted;
            var buffer = new byte[count];
            var read = 0;
            while (read < count)
            {
                read += await socket.ReceiveAsync(buffer.AsMemory(read));
            }

            return buffer;
        }

        public void Dispose()
        {
            _listener.Stop();
            if (_accepted.IsCompletedSuccessfully)
            {
                _accepted.Result.Dispose();
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }

        private async Task<Socket> ServeAsync(Func<string, byte[]> answer)
        {
            var socket = await _listener.AcceptSocketAsync();
            var received = new List<byte>();
            var buffer = new byte[4096];
            while (!Encoding.ASCII.GetString([.. received]).Contains("\r\n\r\n", StringComparison.Ordinal))
            {
                var n = await socket.ReceiveAsync(buffer);
                if (n == 0)
                {
                    break;
                }

                received.AddRange(buffer.AsSpan(0, n));
            }

            var request = Encoding.ASCII.GetString([.. received]);
            _request.TrySetResult(request);
            var key = request.Split("\r\n").Single(l => l.StartsWith("Sec-WebSocket-Key:", StringComparison.OrdinalIgnoreCase))[18..].Trim();
            await socket.SendAsync(answer(key));
            return socket;
        }
    }
}
