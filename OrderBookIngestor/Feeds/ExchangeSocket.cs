using System.Buffers.Binary;
using System.Net;
using System.Net.Http;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;

namespace OrderBookIngestor.Feeds;

/// <summary>
/// A client WebSocket connection to the exchange (RFC 6455) that reads in bulk: one read takes whatever the
/// connection has, and <see cref="WebSocketMessageReader"/> hands out every message in it in place. The HTTP
/// upgrade, TLS, proxies (HTTPS_PROXY and friends) and DNS are .NET's own <see cref="SocketsHttpHandler"/>, the
/// same stack <c>ClientWebSocket</c> uses; only the framing is ours. Sends (control messages, pongs, close)
/// may come from several tasks and are serialised; reads come from one loop.
/// </summary>
internal sealed class ExchangeSocket : IAsyncDisposable
{
    private const string AcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    private const byte Fin = 0x80;

    private readonly HttpMessageInvoker _invoker;
    private readonly HttpResponseMessage _response;
    private readonly Stream _stream;
    private readonly System.Net.Sockets.Socket? _socket;
    private readonly SemaphoreSlim _sendGate = new(1, 1);
    private bool _closeSent;

    private ExchangeSocket(HttpMessageInvoker invoker, HttpResponseMessage response, Stream stream, System.Net.Sockets.Socket? socket, WebSocketMessageReader reader)
    {
        _invoker = invoker;
        _response = response;
        _stream = stream;
        _socket = socket;
        Reader = reader;
    }

    public WebSocketMessageReader Reader { get; }

    /// <summary>Opens the connection and completes the upgrade handshake.</summary>
    /// <exception cref="WebSocketException">The server did not switch protocols, or answered the handshake wrongly.</exception>
    public static async Task<ExchangeSocket> ConnectAsync(Uri uri, int initialBufferBytes, int maxMessageBytes, CancellationToken ct)
    {
        System.Net.Sockets.Socket? connected = null;
        var handler = new SocketsHttpHandler
        {
            // One connection per socket, never pooled, never redirected: as ClientWebSocket does.
            PooledConnectionLifetime = TimeSpan.Zero,
            AllowAutoRedirect = false,
            UseCookies = false,
            ConnectTimeout = TimeSpan.FromSeconds(30),
            // The handler's own way of connecting (a dual-mode socket, every address in turn, no Nagle), kept so that
            // the reader can set the socket's receive low-water mark (ReadCoalescer). Through a proxy this is the
            // connection to the proxy, which carries the tunnel.
            ConnectCallback = async (context, token) =>
            {
                var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(context.DnsEndPoint, token).ConfigureAwait(false);
                    connected = socket;
                    return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        var invoker = new HttpMessageInvoker(handler, disposeHandler: true);
        HttpResponseMessage? response = null;
        try
        {
            var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
            // ws:// and wss:// as they are: the handler then tunnels through a proxy (CONNECT) as ClientWebSocket does.
            using var request = new HttpRequestMessage(HttpMethod.Get, uri)
            {
                Version = HttpVersion.Version11,
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            };
            request.Headers.TryAddWithoutValidation("Connection", "Upgrade");
            request.Headers.TryAddWithoutValidation("Upgrade", "websocket");
            request.Headers.TryAddWithoutValidation("Sec-WebSocket-Version", "13");
            request.Headers.TryAddWithoutValidation("Sec-WebSocket-Key", key);
            response = await invoker.SendAsync(request, ct).ConfigureAwait(false);
            if (response.StatusCode != HttpStatusCode.SwitchingProtocols)
            {
                var retry = response.Headers.RetryAfter?.Delta is { } delta ? $" (Retry-After {delta.TotalSeconds:0} s)" : "";
                throw new WebSocketException(WebSocketError.NotAWebSocket,
                    $"The server returned status code '{(int)response.StatusCode}' when status code '101' was expected{retry}.");
            }

            // RFC 6455 §4.2.2 fixes SHA-1 here; it proves the server read our key, it protects nothing.
#pragma warning disable CA5350
            if (!response.Headers.Upgrade.Any(p => p.Name.Equals("websocket", StringComparison.OrdinalIgnoreCase))
                || !response.Headers.Connection.Any(c => c.Equals("Upgrade", StringComparison.OrdinalIgnoreCase)))
            {
                throw new WebSocketException(WebSocketError.HeaderError, "The server switched protocols without 'Upgrade: websocket' and 'Connection: Upgrade'.");
            }

            var expected = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + AcceptGuid)));
#pragma warning restore CA5350
            if (!response.Headers.TryGetValues("Sec-WebSocket-Accept", out var accept) || accept.SingleOrDefault() != expected)
            {
                throw new WebSocketException(WebSocketError.HeaderError, "The server's Sec-WebSocket-Accept does not answer our key.");
            }

            var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            return new ExchangeSocket(invoker, response, stream, connected, new WebSocketMessageReader(initialBufferBytes, maxMessageBytes));
        }
        catch
        {
            response?.Dispose();
            invoker.Dispose();
            throw;
        }
    }

    /// <summary>Reads what the connection has (at least one byte) into the reader.</summary>
    /// <returns>False when the server ended the connection without a close frame.</returns>
    public async ValueTask<bool> ReceiveAsync(CancellationToken ct)
    {
        var read = await _stream.ReadAsync(Reader.FreeSpace(), ct).ConfigureAwait(false);
        Reader.Advance(read);
        return read > 0;
    }

    /// <summary>Bytes the kernel holds unread for this connection (0 when unknown).</summary>
    public int Available
    {
        get
        {
            try
            {
                return _socket?.Available ?? 0;
            }
            catch (Exception ex) when (ex is System.Net.Sockets.SocketException or ObjectDisposedException)
            {
                return 0;
            }
        }
    }

    /// <summary>Sets how many bytes the kernel gathers before it reports the connection readable (SO_RCVLOWAT).</summary>
    /// <returns>The mark the kernel now holds, or 0 when it cannot be set (no socket reached, or the platform refuses).</returns>
    public int TrySetReceiveLowWater(int bytes)
    {
        if (_socket is null)
        {
            return 0;
        }

        try
        {
            _socket.SetSocketOption(System.Net.Sockets.SocketOptionLevel.Socket, System.Net.Sockets.SocketOptionName.ReceiveLowWater, bytes);
            return (int)_socket.GetSocketOption(System.Net.Sockets.SocketOptionLevel.Socket, System.Net.Sockets.SocketOptionName.ReceiveLowWater)!;
        }
        catch (Exception ex) when (ex is System.Net.Sockets.SocketException or ObjectDisposedException or PlatformNotSupportedException)
        {
            return 0;
        }
    }

    public Task SendTextAsync(ReadOnlyMemory<byte> payload, CancellationToken ct) => WriteAsync(EncodeClientFrame(0x1, payload.Span), ct);

    /// <summary>Answers a ping with its own payload, or keeps the connection alive with an unsolicited pong (Binance allows them).</summary>
    public Task SendPongAsync(ReadOnlySpan<byte> payload, CancellationToken ct) => WriteAsync(EncodeClientFrame(0xA, payload), ct);

    /// <summary>Sends a close frame (once); the caller then stops reading and disposes.</summary>
    public Task CloseOutputAsync(WebSocketCloseStatus status, string reason, CancellationToken ct)
    {
        if (_closeSent)
        {
            return Task.CompletedTask;
        }

        _closeSent = true;
        var reasonBytes = Encoding.UTF8.GetBytes(reason);
        var payload = new byte[2 + Math.Min(reasonBytes.Length, 123)];
        BinaryPrimitives.WriteUInt16BigEndian(payload, (ushort)status);
        reasonBytes.AsSpan(0, payload.Length - 2).CopyTo(payload.AsSpan(2));
        return WriteAsync(EncodeClientFrame(0x8, payload), ct);
    }

    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync().ConfigureAwait(false);
        _response.Dispose();
        _invoker.Dispose();
        Reader.Dispose();
        _sendGate.Dispose();
    }

    /// <summary>One masked frame (a client must mask every frame, RFC 6455 §5.3).</summary>
    internal static byte[] EncodeClientFrame(byte opcode, ReadOnlySpan<byte> payload)
    {
        var lengthBytes = payload.Length < 126 ? 0 : payload.Length <= ushort.MaxValue ? 2 : 8;
        var frame = new byte[2 + lengthBytes + 4 + payload.Length];
        frame[0] = (byte)(Fin | opcode);
        switch (lengthBytes)
        {
            case 0:
                frame[1] = (byte)(0x80 | payload.Length);
                break;
            case 2:
                frame[1] = 0x80 | 126;
                BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(2), (ushort)payload.Length);
                break;
            default:
                frame[1] = 0x80 | 127;
                BinaryPrimitives.WriteUInt64BigEndian(frame.AsSpan(2), (ulong)payload.Length);
                break;
        }

        var mask = frame.AsSpan(2 + lengthBytes, 4);
        RandomNumberGenerator.Fill(mask);
        var body = frame.AsSpan(6 + lengthBytes);
        for (var i = 0; i < payload.Length; i++)
        {
            body[i] = (byte)(payload[i] ^ mask[i & 3]);
        }

        return frame;
    }

    /// <summary>Writes one encoded frame; frames from several tasks never interleave.</summary>
    private async Task WriteAsync(byte[] frame, CancellationToken ct)
    {
        await _sendGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await _stream.WriteAsync(frame, ct).ConfigureAwait(false);
            await _stream.FlushAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _sendGate.Release();
        }
    }
}
