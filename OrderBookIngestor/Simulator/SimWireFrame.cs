using System.Buffers.Binary;

namespace OrderBookIngestor.Simulator;

/// <summary>
/// A server-to-client WebSocket frame, encoded once (RFC 6455 §5.2: FIN, opcode, unmasked length, payload) and
/// shared by every connection it goes to. The send loop writes these bytes to the transport itself, so each event
/// costs one copy per client instead of a trip through WebSocket.SendAsync.
/// </summary>
/// <param name="Event">The market event it carries, or null for an injected frame that stays out of the ledger.</param>
/// <param name="Bytes">Header and payload.</param>
/// <param name="HeaderLength">Where the payload starts.</param>
public readonly record struct SimWireFrame(SimEvent? Event, byte[] Bytes, int HeaderLength)
{
    private const byte Fin = 0x80;
    private const byte TextOpcode = 0x1;
    private const byte BinaryOpcode = 0x2;

    public bool Binary => (Bytes[0] & 0x0F) == BinaryOpcode;

    public ReadOnlyMemory<byte> Payload => Bytes.AsMemory(HeaderLength);

    /// <summary>A text frame carrying <paramref name="data"/>, wrapped as {prefix}{data}} when a combined-stream prefix is given.</summary>
    public static SimWireFrame Text(SimEvent? e, ReadOnlySpan<byte> prefix, ReadOnlySpan<byte> data)
    {
        var payloadLength = prefix.IsEmpty ? data.Length : prefix.Length + data.Length + 1;
        var (bytes, header) = Allocate(TextOpcode, payloadLength);
        var payload = bytes.AsSpan(header);
        if (prefix.IsEmpty)
        {
            data.CopyTo(payload);
        }
        else
        {
            prefix.CopyTo(payload);
            data.CopyTo(payload[prefix.Length..]);
            payload[^1] = (byte)'}';
        }

        return new SimWireFrame(e, bytes, header);
    }

    /// <summary>An injected frame sent as-is (fault injection), text or binary.</summary>
    public static SimWireFrame Raw(ReadOnlySpan<byte> payload, bool binary)
    {
        var (bytes, header) = Allocate(binary ? BinaryOpcode : TextOpcode, payload.Length);
        payload.CopyTo(bytes.AsSpan(header));
        return new SimWireFrame(null, bytes, header);
    }

    private static (byte[] Bytes, int HeaderLength) Allocate(byte opcode, int payloadLength)
    {
        var header = payloadLength < 126 ? 2 : payloadLength <= ushort.MaxValue ? 4 : 10;
        var bytes = new byte[header + payloadLength];
        bytes[0] = (byte)(Fin | opcode);
        switch (header)
        {
            case 2:
                bytes[1] = (byte)payloadLength;
                break;
            case 4:
                bytes[1] = 126;
                BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(2), (ushort)payloadLength);
                break;
            default:
                bytes[1] = 127;
                BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(2), (ulong)payloadLength);
                break;
        }

        return (bytes, header);
    }
}
