using System.Net.WebSockets;
using OrderBookIngestor.Simulator;

namespace OrderBookIngestor.Tests.Unit;

/// <summary>The simulator writes its data frames' bytes itself; a real WebSocket client must read them back intact.</summary>
public sealed class SimWireFrameTests
{
    [TestCase(0)]
    [TestCase(125)]
    [TestCase(126)]
    [TestCase(65_535)]
    [TestCase(65_536)]
    public async Task A_client_WebSocket_reads_each_length_encoding_back_as_the_same_message(int length)
    {
        // Printable ASCII: a text frame must be valid UTF-8, and the client checks.
        var random = new Random(length);
        var data = new byte[length];
        for (var i = 0; i < data.Length; i++)
        {
            data[i] = (byte)random.Next(0x20, 0x7F);
        }

        var prefix = "{\"stream\":\"btcusdt@bookTicker\",\"data\":"u8.ToArray();

        var text = SimWireFrame.Text(null, prefix, data);
        var binary = SimWireFrame.Raw(data, binary: true);
        using var wire = new MemoryStream([.. text.Bytes, .. binary.Bytes]);
        using var client = WebSocket.CreateFromStream(wire, new WebSocketCreationOptions { IsServer = false });

        var (type1, message1) = await ReceiveAsync(client);
        var (type2, message2) = await ReceiveAsync(client);

        Assert.Multiple(() =>
        {
            Assert.That(type1, Is.EqualTo(WebSocketMessageType.Text));
            Assert.That(message1, Is.EqualTo((byte[])[.. prefix, .. data, (byte)'}']));
            Assert.That(text.Payload.ToArray(), Is.EqualTo(message1));
            Assert.That(type2, Is.EqualTo(WebSocketMessageType.Binary));
            Assert.That(message2, Is.EqualTo(data));
            Assert.That(binary.Binary, Is.True);
            Assert.That(text.Binary, Is.False);
        });
    }

    private static async Task<(WebSocketMessageType Type, byte[] Message)> ReceiveAsync(WebSocket socket)
    {
        using var message = new MemoryStream();
        var buffer = new byte[8192];
        ValueWebSocketReceiveResult r;
        do
        {
            r = await socket.ReceiveAsync(buffer.AsMemory(), CancellationToken.None);
            message.Write(buffer, 0, r.Count);
        }
        while (!r.EndOfMessage);

        return (r.MessageType, message.ToArray());
    }
}
