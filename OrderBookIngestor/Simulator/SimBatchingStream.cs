using Microsoft.AspNetCore.Http.Features;

namespace OrderBookIngestor.Simulator;

/// <summary>
/// The upgraded WebSocket transport, with batching: between BeginBatch and EndBatchAsync the frames a send loop
/// writes collect in a buffer and reach Kestrel as one write and one flush, instead of one each per frame (what
/// capped the simulator's offer rate). Outside a batch every write goes straight through, so the WebSocket's own
/// pings, pongs, control replies and close frames are never held back.
/// </summary>
internal sealed class SimBatchingStream : Stream
{
    private const int FlushAtBytes = 64 * 1024;

    private readonly Stream _inner;
    private readonly SemaphoreSlim _write = new(1, 1);
    private byte[] _buffer = new byte[FlushAtBytes * 2];
    private int _buffered;
    private bool _batching;

    public SimBatchingStream(Stream inner) => _inner = inner;

    /// <summary>From now on, writes collect until EndBatchAsync (or until the buffer holds 64 KiB).</summary>
    public void BeginBatch() => Volatile.Write(ref _batching, true);

    public async Task EndBatchAsync(CancellationToken ct)
    {
        await _write.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            Volatile.Write(ref _batching, false);
            await DrainAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _write.Release();
        }
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken ct = default)
    {
        await _write.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (!Volatile.Read(ref _batching))
            {
                await DrainAsync(ct).ConfigureAwait(false);
                await _inner.WriteAsync(data, ct).ConfigureAwait(false);
                return;
            }

            if (_buffered + data.Length > _buffer.Length)
            {
                Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _buffered + data.Length));
            }

            data.CopyTo(_buffer.AsMemory(_buffered));
            _buffered += data.Length;
            if (_buffered >= FlushAtBytes)
            {
                await DrainAsync(ct).ConfigureAwait(false);
            }
        }
        finally
        {
            _write.Release();
        }
    }

    /// <summary>Writes what is buffered through. The caller holds the write gate.</summary>
    private async ValueTask DrainAsync(CancellationToken ct)
    {
        if (_buffered > 0)
        {
            var n = _buffered;
            _buffered = 0;
            await _inner.WriteAsync(_buffer.AsMemory(0, n), ct).ConfigureAwait(false);
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override Task FlushAsync(CancellationToken cancellationToken)
        => Volatile.Read(ref _batching) ? Task.CompletedTask : _inner.FlushAsync(cancellationToken);

    public override void Flush() => FlushAsync().GetAwaiter().GetResult();

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _inner.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _inner.ReadAsync(buffer, offset, count, cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await _inner.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>Installed before UseWebSockets: the WebSocket middleware upgrades through this, so the socket it
/// creates writes to a SimBatchingStream that the session can then batch.</summary>
internal sealed class SimBatchingUpgradeFeature(IHttpUpgradeFeature inner) : IHttpUpgradeFeature
{
    public SimBatchingStream? Stream { get; private set; }

    public bool IsUpgradableRequest => inner.IsUpgradableRequest;

    public async Task<Stream> UpgradeAsync()
    {
        Stream = new SimBatchingStream(await inner.UpgradeAsync().ConfigureAwait(false));
        return Stream;
    }
}
