using System.Buffers.Binary;
using System.Net.WebSockets;
using System.Text;
using OrderBookIngestor.Feeds;

namespace OrderBookIngestor.Tests.Unit;

/// <summary>
/// The daemon's WebSocket framing against .NET's own server-side WebSocket as the independent reference: what one
/// writes, the other reads back intact, however the bytes are split across reads.
/// </summary>
public sealed class WebSocketMessageReaderTests
{
    private const int Limit = 64 * 1024;

    [TestCase(1)]
    [TestCase(7)]
    [TestCase(4096)]
    [TestCase(1 << 20)]
    public async Task Messages_a_server_WebSocket_sends_come_out_whole_and_in_order_however_the_bytes_are_split(int chunk)
    {
        var texts = new[] { 0, 1, 125, 126, 65_535, 65_536 }.Select(n => Ascii(n, seed: n)).ToList();
        var wire = await ServerSendsAsync(async server =>
        {
            foreach (var text in texts)
            {
                await server.SendAsync(text, WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
            }

            // One message in three frames, as a server may fragment it.
            var parts = Ascii(3_000, seed: 3);
            await server.SendAsync(parts.AsMemory(0, 1_000), WebSocketMessageType.Text, endOfMessage: false, CancellationToken.None);
            await server.SendAsync(parts.AsMemory(1_000, 1_000), WebSocketMessageType.Text, endOfMessage: false, CancellationToken.None);
            await server.SendAsync(parts.AsMemory(2_000), WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
            await server.SendAsync(new byte[] { 1, 2, 3 }, WebSocketMessageType.Binary, endOfMessage: true, CancellationToken.None);
        });

        var messages = ReadAll(wire, chunk, Limit * 2);

        Assert.That(messages.Select(m => m.Kind), Is.EqualTo(Enumerable.Repeat(WebSocketMessageKind.Text, texts.Count + 1).Append(WebSocketMessageKind.Binary)));
        for (var i = 0; i < texts.Count; i++)
        {
            Assert.That(messages[i].Payload, Is.EqualTo(texts[i]), $"message {i}");
        }

        Assert.That(messages[^2].Payload, Is.EqualTo(Ascii(3_000, seed: 3)), "the fragmented message");
        Assert.That(messages[^1].Payload, Is.EqualTo(new byte[] { 1, 2, 3 }));
        Assert.That(messages.Sum(m => m.WireBytes), Is.EqualTo(wire.Length), "every byte of the wire is accounted to a message");
    }

    [Test]
    public void A_ping_inside_a_fragmented_message_is_handed_out_pongs_are_dropped_and_a_close_says_why()
    {
        byte[] wire =
        [
            .. Frame(0x1, fin: false, "ab"u8),
            .. Frame(0x9, fin: true, "hi"u8),
            .. Frame(0xA, fin: true, "unsolicited"u8),
            .. Frame(0x0, fin: true, "cd"u8),
            .. Frame(0x8, fin: true, [0x03, 0xE8, .. "bye"u8]),
        ];

        var messages = ReadAll(wire, chunk: 3, Limit);

        Assert.That(messages.Select(m => m.Kind), Is.EqualTo(new[] { WebSocketMessageKind.Ping, WebSocketMessageKind.Text, WebSocketMessageKind.Close }));
        Assert.That(messages[0].Payload, Is.EqualTo("hi"u8.ToArray()));
        Assert.That(messages[1].Payload, Is.EqualTo("abcd"u8.ToArray()));
        Assert.That(WebSocketMessageReader.ParseClose(messages[2].Payload), Is.EqualTo(((WebSocketCloseStatus?)WebSocketCloseStatus.NormalClosure, "bye")));
        Assert.That(WebSocketMessageReader.ParseClose([]), Is.EqualTo(((WebSocketCloseStatus?)null, (string?)null)));
    }

    [TestCase(new byte[] { 0x81, 0x82, 1, 2, 3, 4, 0, 0 }, "masked")]
    [TestCase(new byte[] { 0xC1, 0x00 }, "reserved bits")]
    [TestCase(new byte[] { 0x83, 0x00 }, "unknown opcode")]
    [TestCase(new byte[] { 0x80, 0x00 }, "continuation")]
    [TestCase(new byte[] { 0x09, 0x00 }, "control frame")]
    [TestCase(new byte[] { 0x89, 0x7E, 0x00, 0x7E }, "control frame")]
    [TestCase(new byte[] { 0x01, 0x01, (byte)'a', 0x81, 0x00 }, "inside a fragmented message")]
    [TestCase(new byte[] { 0x81, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0 }, "most significant bit")]
    public void What_the_protocol_forbids_a_server_fails_the_connection(byte[] wire, string why)
    {
        var ex = Assert.Throws<WebSocketException>(() => ReadAll(wire, chunk: wire.Length, Limit));
        Assert.That(ex!.Message, Does.Contain(why));
    }

    [TestCase(1_000)]
    [TestCase(4_096)]
    [TestCase(1 << 20)]
    public void A_message_over_the_limit_is_skipped_as_it_streams_reported_once_and_the_next_is_intact(int chunk)
    {
        var huge = Ascii(200_000, seed: 9);
        var fragmented = Ascii(3 * 30_000, seed: 10);
        byte[] wire =
        [
            .. Frame(0x1, fin: true, huge),
            .. Frame(0x1, fin: true, "after"u8),
            // Over the limit only once its third frame arrives; a ping in between still gets through.
            .. Frame(0x1, fin: false, fragmented.AsSpan(0, 30_000)),
            .. Frame(0x0, fin: false, fragmented.AsSpan(30_000, 30_000)),
            .. Frame(0x9, fin: true, "p"u8),
            .. Frame(0x0, fin: false, fragmented.AsSpan(60_000, 30_000)),
            .. Frame(0x0, fin: true, "tail"u8),
            .. Frame(0x1, fin: true, "last"u8),
        ];

        using var reader = new WebSocketMessageReader(16 * 1024, Limit);
        var messages = Read(reader, wire, chunk, out var largestFree);

        Assert.That(messages.Select(m => m.Kind), Is.EqualTo(new[]
        {
            WebSocketMessageKind.Oversize, WebSocketMessageKind.Text, WebSocketMessageKind.Ping, WebSocketMessageKind.Oversize, WebSocketMessageKind.Text,
        }));
        Assert.That(messages[0].Payload, Is.EqualTo(huge.AsSpan(0, WebSocketMessageReader.PreviewBytes).ToArray()), "the preview is the message's start");
        Assert.That(messages[1].Payload, Is.EqualTo("after"u8.ToArray()));
        Assert.That(messages[3].Payload, Is.EqualTo(fragmented.AsSpan(0, WebSocketMessageReader.PreviewBytes).ToArray()));
        Assert.That(messages[4].Payload, Is.EqualTo("last"u8.ToArray()));
        Assert.That(largestFree, Is.LessThanOrEqualTo(2 * Limit), "the buffer never grew to hold what it skipped");
    }

    [TestCase(0)]
    [TestCase(125)]
    [TestCase(126)]
    [TestCase(70_000)]
    public async Task Frames_the_client_sends_are_masked_and_a_server_WebSocket_reads_them_back(int length)
    {
        var text = Ascii(length, seed: length);
        var frame = ExchangeSocket.EncodeClientFrame(0x1, text);
        Assert.That(frame[1] & 0x80, Is.EqualTo(0x80), "the mask bit");

        using var wire = new MemoryStream(frame);
        using var server = WebSocket.CreateFromStream(wire, new WebSocketCreationOptions { IsServer = true });
        var buffer = new byte[length + 1];
        var received = 0;
        ValueWebSocketReceiveResult result;
        do
        {
            result = await server.ReceiveAsync(buffer.AsMemory(received), CancellationToken.None);
            received += result.Count;
        }
        while (!result.EndOfMessage);

        Assert.That(result.MessageType, Is.EqualTo(WebSocketMessageType.Text));
        Assert.That(buffer.AsSpan(0, received).ToArray(), Is.EqualTo(text));
    }

    private static List<(WebSocketMessageKind Kind, byte[] Payload, int WireBytes)> ReadAll(byte[] wire, int chunk, int limit)
    {
        using var reader = new WebSocketMessageReader(64, limit);
        return Read(reader, wire, chunk, out _);
    }

    /// <summary>Feeds the wire to the reader at most <paramref name="chunk"/> bytes per read, as a socket would.</summary>
    private static List<(WebSocketMessageKind Kind, byte[] Payload, int WireBytes)> Read(WebSocketMessageReader reader, byte[] wire, int chunk, out int largestFree)
    {
        var messages = new List<(WebSocketMessageKind, byte[], int)>();
        largestFree = 0;
        var at = 0;
        while (at < wire.Length)
        {
            var free = reader.FreeSpace();
            largestFree = Math.Max(largestFree, free.Length);
            var n = Math.Min(Math.Min(chunk, free.Length), wire.Length - at);
            wire.AsSpan(at, n).CopyTo(free.Span);
            reader.Advance(n);
            at += n;
            while (reader.TryNext(out var message))
            {
                messages.Add((message.Kind, message.Payload.ToArray(), message.WireBytes));
            }
        }

        Assert.That(reader.Buffered, Is.Zero, "nothing left over");
        return messages;
    }

    private static async Task<byte[]> ServerSendsAsync(Func<WebSocket, Task> send)
    {
        using var wire = new MemoryStream();
        using (var server = WebSocket.CreateFromStream(wire, new WebSocketCreationOptions { IsServer = true, KeepAliveInterval = TimeSpan.Zero }))
        {
            await send(server);
        }

        return wire.ToArray();
    }

    private static byte[] Frame(byte opcode, bool fin, ReadOnlySpan<byte> payload)
    {
        var lengthBytes = payload.Length < 126 ? 0 : payload.Length <= ushort.MaxValue ? 2 : 8;
        var frame = new byte[2 + lengthBytes + payload.Length];
        frame[0] = (byte)((fin ? 0x80 : 0) | opcode);
        if (lengthBytes == 0)
        {
            frame[1] = (byte)payload.Length;
        }
        else if (lengthBytes == 2)
        {
            frame[1] = 126;
            BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(2), (ushort)payload.Length);
        }
        else
        {
            frame[1] = 127;
            BinaryPrimitives.WriteUInt64BigEndian(frame.AsSpan(2), (ulong)payload.Length);
        }

        payload.CopyTo(frame.AsSpan(2 + lengthBytes));
        return frame;
    }

    private static byte[] Ascii(int length, int seed)
    {
        var random = new Random(seed);
        return Encoding.ASCII.GetBytes(new string([.. Enumerable.Range(0, length).Select(_ => (char)random.Next(0x20, 0x7F))]));
    }
}
