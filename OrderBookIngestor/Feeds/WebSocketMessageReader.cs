using System.Buffers;
using System.Buffers.Binary;
using System.Net.WebSockets;
using System.Text;
using OrderBookIngestor.Exchange;

namespace OrderBookIngestor.Feeds;

/// <summary>What a server-to-client message is.</summary>
internal enum WebSocketMessageKind
{
    Text,
    Binary,

    /// <summary>A data message longer than the limit: its payload was skipped; <see cref="WebSocketMessage.Payload"/> is its first bytes.</summary>
    Oversize,
    Ping,
    Close,
}

/// <summary>One message, valid until the reader's next <see cref="WebSocketMessageReader.TryNext"/> or <see cref="WebSocketMessageReader.Advance"/>.</summary>
internal readonly record struct WebSocketMessage(WebSocketMessageKind Kind, byte[] Buffer, int Offset, int Length, int WireBytes)
{
    public ReadOnlySpan<byte> Payload => Buffer.AsSpan(Offset, Length);
}

/// <summary>
/// Splits the bytes a client receives into WebSocket messages (RFC 6455 §5), in place: every message that a read
/// brought in is handed out from the receive buffer without a copy, without an await per message and without
/// the framework's stream layers per message. Reading messages one <c>ReceiveAsync</c> at a time through
/// <c>ClientWebSocket</c> cost ~30 % of the daemon's CPU at 2,000 msg/s (perf, issue 17).
/// Fragmented messages are reassembled in a second buffer; pongs are dropped; a data message longer than the limit
/// is skipped as it arrives and reported once as <see cref="WebSocketMessageKind.Oversize"/>. What the protocol
/// forbids a server (masked frames, reserved bits, unknown opcodes, long or fragmented control frames, a
/// continuation with nothing to continue) throws <see cref="WebSocketException"/>: the connection cannot be trusted.
/// </summary>
internal sealed class WebSocketMessageReader : IDisposable
{
    /// <summary>How many of an oversize message's first bytes are kept for the log.</summary>
    public const int PreviewBytes = 256;

    private const int MaxHeaderBytes = 10;
    private const byte OpContinuation = 0x0;
    private const byte OpText = 0x1;
    private const byte OpBinary = 0x2;
    private const byte OpClose = 0x8;
    private const byte OpPing = 0x9;
    private const byte OpPong = 0xA;

    private readonly int _maxMessageBytes;
    private byte[] _buffer;
    private int _start;
    private int _end;

    // A fragmented message being put together (kept for reuse: Binance does not fragment, so this is rare).
    private byte[]? _fragments;
    private bool _fragmenting;
    private int _fragmentsLength;
    private int _fragmentsWire;
    private byte _fragmentsOpcode;

    // An oversize message being skipped: the rest of this frame, then (if it was not the last) its continuations.
    private long _skipRemaining;
    private bool _discarding;
    private bool _oversizePending;
    private int _skipWire;
    private readonly byte[] _preview = new byte[PreviewBytes];
    private int _previewLength;

    public WebSocketMessageReader(int initialBytes, int maxMessageBytes)
    {
        _maxMessageBytes = maxMessageBytes;
        _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(initialBytes, 2 * MaxHeaderBytes));
    }

    /// <summary>Bytes received but not yet handed out.</summary>
    public int Buffered => _end - _start;

    /// <summary>Where the next read goes: never empty. Grows the buffer when a whole frame cannot fit.</summary>
    public Memory<byte> FreeSpace()
    {
        if (_start == _end)
        {
            _start = _end = 0;
        }

        var needed = NeededForFrame();
        if (_buffer.Length - _start < needed || _end == _buffer.Length)
        {
            // Move what is left of a partial frame to the front (at most one frame: everything before it was handed out).
            _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
            _end -= _start;
            _start = 0;
        }

        if (_buffer.Length < needed)
        {
            PooledArrays.Grow(ref _buffer, Math.Max(needed, _buffer.Length * 2), _end);
        }

        return _buffer.AsMemory(_end);
    }

    /// <summary>A read put <paramref name="count"/> bytes into <see cref="FreeSpace"/>.</summary>
    public void Advance(int count)
    {
        if (count < 0 || _end + count > _buffer.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(count));
        }

        _end += count;
    }

    /// <summary>The next whole message in the buffer, if one is there.</summary>
    public bool TryNext(out WebSocketMessage message)
    {
        while (true)
        {
            if (_skipRemaining > 0)
            {
                var skipped = (int)Math.Min(_skipRemaining, _end - _start);
                _start += skipped;
                _skipRemaining -= skipped;
                _skipWire += skipped;
                if (_skipRemaining > 0)
                {
                    message = default;
                    return false;
                }
            }

            if (_oversizePending)
            {
                _oversizePending = false;
                message = new WebSocketMessage(WebSocketMessageKind.Oversize, _preview, 0, _previewLength, _skipWire);
                _skipWire = 0;
                return true;
            }

            var available = _buffer.AsSpan(_start, _end - _start);
            if (!TryReadHeader(available, out var fin, out var opcode, out var headerLength, out var payloadLength))
            {
                message = default;
                return false;
            }

            if (opcode is OpText or OpBinary or OpContinuation)
            {
                CheckSequence(opcode);
                if (_discarding || IsTooLong(opcode, payloadLength))
                {
                    Skip(available, fin, headerLength, payloadLength);
                    continue;
                }
            }

            var frameLength = headerLength + (int)payloadLength;
            if (available.Length < frameLength)
            {
                message = default;
                return false;
            }

            var payloadOffset = _start + headerLength;
            _start += frameLength;
            switch (opcode)
            {
                case OpText or OpBinary when fin:
                    message = new WebSocketMessage(opcode == OpText ? WebSocketMessageKind.Text : WebSocketMessageKind.Binary,
                        _buffer, payloadOffset, (int)payloadLength, frameLength);
                    return true;
                case OpText or OpBinary:
                    _fragmenting = true;
                    _fragmentsOpcode = opcode;
                    _fragmentsLength = 0;
                    _fragmentsWire = 0;
                    AppendFragment(payloadOffset, (int)payloadLength, frameLength);
                    continue;
                case OpContinuation:
                    AppendFragment(payloadOffset, (int)payloadLength, frameLength);
                    if (!fin)
                    {
                        continue;
                    }

                    _fragmenting = false;
                    message = new WebSocketMessage(_fragmentsOpcode == OpText ? WebSocketMessageKind.Text : WebSocketMessageKind.Binary,
                        _fragments!, 0, _fragmentsLength, _fragmentsWire);
                    return true;
                case OpPing:
                    message = new WebSocketMessage(WebSocketMessageKind.Ping, _buffer, payloadOffset, (int)payloadLength, frameLength);
                    return true;
                case OpClose:
                    message = new WebSocketMessage(WebSocketMessageKind.Close, _buffer, payloadOffset, (int)payloadLength, frameLength);
                    return true;
                default:
                    // A pong: an answer to our keep-alive, nothing to hand on.
                    continue;
            }
        }
    }

    /// <summary>A close frame's status code and reason (RFC 6455 §5.5.1).</summary>
    public static (WebSocketCloseStatus? Status, string? Reason) ParseClose(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 2)
        {
            return (null, null);
        }

        var status = (WebSocketCloseStatus)BinaryPrimitives.ReadUInt16BigEndian(payload);
        var reason = payload.Length > 2 ? Encoding.UTF8.GetString(payload[2..]) : null;
        return (status, reason);
    }

    public void Dispose()
    {
        ArrayPool<byte>.Shared.Return(_buffer);
        if (_fragments is not null)
        {
            ArrayPool<byte>.Shared.Return(_fragments);
            _fragments = null;
        }
    }

    private static bool TryReadHeader(ReadOnlySpan<byte> data, out bool fin, out byte opcode, out int headerLength, out long payloadLength)
    {
        fin = false;
        opcode = 0;
        headerLength = 0;
        payloadLength = 0;
        if (data.Length < 2)
        {
            return false;
        }

        var first = data[0];
        var second = data[1];
        fin = (first & 0x80) != 0;
        opcode = (byte)(first & 0x0F);
        if ((first & 0x70) != 0)
        {
            throw Violation("a frame has reserved bits set, and no extension was negotiated");
        }

        if ((second & 0x80) != 0)
        {
            throw Violation("the server masked a frame");
        }

        payloadLength = second & 0x7F;
        headerLength = 2;
        if (payloadLength == 126)
        {
            if (data.Length < 4)
            {
                return false;
            }

            payloadLength = BinaryPrimitives.ReadUInt16BigEndian(data[2..]);
            headerLength = 4;
        }
        else if (payloadLength == 127)
        {
            if (data.Length < 10)
            {
                return false;
            }

            var length = BinaryPrimitives.ReadUInt64BigEndian(data[2..]);
            if (length > long.MaxValue)
            {
                throw Violation("a frame's length has its most significant bit set");
            }

            payloadLength = (long)length;
            headerLength = 10;
        }

        switch (opcode)
        {
            case OpContinuation or OpText or OpBinary:
                return true;
            case OpClose or OpPing or OpPong when fin && payloadLength <= 125:
                return true;
            case OpClose or OpPing or OpPong:
                throw Violation("a control frame is fragmented or longer than 125 bytes");
            default:
                throw Violation($"unknown opcode {opcode}");
        }
    }

    private bool IsTooLong(byte opcode, long payloadLength) =>
        opcode == OpContinuation && _fragmenting
            ? _fragmentsLength + payloadLength > _maxMessageBytes
            : payloadLength > _maxMessageBytes;

    /// <summary>Bytes the buffer must hold from <c>_start</c> for the frame there to be whole.</summary>
    private int NeededForFrame()
    {
        if (_skipRemaining > 0 || _oversizePending)
        {
            return 1;
        }

        var available = _buffer.AsSpan(_start, _end - _start);
        if (!TryReadHeader(available, out _, out var opcode, out var headerLength, out var payloadLength))
        {
            return MaxHeaderBytes;
        }

        // A frame too long to keep is skipped as it streams in; it never needs the room.
        return opcode is OpText or OpBinary or OpContinuation && (_discarding || IsTooLong(opcode, payloadLength))
            ? 1
            : headerLength + (int)payloadLength;
    }

    /// <summary>A data frame must start a message or continue one, never both or neither.</summary>
    private void CheckSequence(byte opcode)
    {
        var continuing = _fragmenting || _discarding;
        if (opcode == OpContinuation && !continuing)
        {
            throw Violation("a continuation frame arrived with no fragmented message to continue");
        }

        if (opcode != OpContinuation && continuing)
        {
            throw Violation("a new data frame arrived inside a fragmented message");
        }
    }

    /// <summary>Skips this data frame's payload as it arrives; the message is reported once its last frame is skipped.</summary>
    private void Skip(ReadOnlySpan<byte> available, bool fin, int headerLength, long payloadLength)
    {
        if (!_discarding)
        {
            // The preview is the message's start: what was put together so far, else this frame's first bytes.
            if (_fragmenting)
            {
                _previewLength = Math.Min(_fragmentsLength, PreviewBytes);
                _fragments.AsSpan(0, _previewLength).CopyTo(_preview);
                _skipWire = _fragmentsWire;
                _fragmenting = false;
            }
            else
            {
                var payloadHere = available[headerLength..];
                _previewLength = (int)Math.Min(Math.Min(payloadHere.Length, payloadLength), PreviewBytes);
                payloadHere[.._previewLength].CopyTo(_preview);
                _skipWire = 0;
            }

            _discarding = true;
        }

        _start += headerLength;
        _skipWire += headerLength;
        _skipRemaining = payloadLength;
        if (fin)
        {
            _discarding = false;
            _oversizePending = true;
        }
    }

    private void AppendFragment(int offset, int length, int wire)
    {
        _fragments ??= ArrayPool<byte>.Shared.Rent(Math.Max(length * 2, 4096));
        if (_fragments.Length - _fragmentsLength < length)
        {
            PooledArrays.Grow(ref _fragments, Math.Max(_fragmentsLength + length, _fragments.Length * 2), _fragmentsLength);
        }

        _buffer.AsSpan(offset, length).CopyTo(_fragments.AsSpan(_fragmentsLength));
        _fragmentsLength += length;
        _fragmentsWire += wire;
    }

    private static WebSocketException Violation(string what) =>
        new(WebSocketError.Faulted, "WebSocket protocol violation: " + what);
}
