using System.Runtime.CompilerServices;
using System.Threading.Channels;
using System.Threading.Tasks.Sources;

namespace OrderBookIngestor.Pipeline;

/// <summary>
/// A bounded channel for many writers and one reader that gives its memory back once a backlog drains.
/// <para>
/// <c>Channel.CreateBounded</c> keeps its items in one array that doubles as a backlog grows and never shrinks: in an
/// hour's soak at 50,000 msg/s, one database stall left the book_ticker and trades buffers holding arrays of 19 and
/// 21 MB (262,144 slots each) for the rest of the run, and RSS stepped up with them. Here the items live in a chain of
/// segments of about 64 kB (below the large object heap's threshold). A segment the reader has emptied goes to a small
/// spare list, enough for the ordinary ebb and flow between batches without allocating, and past that to the GC.
/// </para>
/// <para>
/// Full mode is Wait, as with <c>BoundedChannelFullMode.Wait</c>: a writer waits for room, nothing is dropped.
/// Continuations never run on the thread that completes them. After <see cref="ChannelWriter{T}.TryComplete"/> the
/// reader still gets every item written before it.
/// </para>
/// </summary>
public sealed class SegmentedChannel<T> : Channel<T>
{
    /// <summary>Spare segments kept per channel (about 1 MB): the backlog between two batches at the rates the
    /// benchmark runs comes and goes without allocating.</summary>
    public const int MaxSpareSegments = 16;

    /// <summary>The writers are done, without an error.</summary>
    private static readonly Exception DoneSentinel = new ChannelClosedException();

    private static readonly int Length = Math.Max(64, (64 * 1024) / Math.Max(1, Unsafe.SizeOf<T>()));

    private readonly Lock _sync = new();
    private readonly int _capacity;
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ReaderWait _readerWait = new();
    private readonly List<WriterWait> _writerWaits = [];

    private Segment? _head;
    private Segment? _tail;
    private int _headIndex;
    private int _tailIndex;
    private int _count;
    private Segment? _spare;
    private int _spareCount;
    private int _segments;
    private Exception? _done;
    private bool _readerWaiting;
    private CancellationToken _readerToken;

    public SegmentedChannel(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _capacity = capacity;
        Reader = new SegmentReader(this);
        Writer = new SegmentWriter(this);
    }

    /// <summary>Items the channel holds before writers wait.</summary>
    public int Capacity => _capacity;

    /// <summary>Items per segment: as many as fit in 64 kB, at least 64.</summary>
    public int SegmentLength => Length;

    /// <summary>Segments allocated and not yet given to the GC (in use or spare).</summary>
    public int Segments
    {
        get
        {
            lock (_sync)
            {
                return _segments;
            }
        }
    }

    /// <summary>Writers waiting for room in the full channel: readers held back by a slower database.</summary>
    public int WaitingWriters
    {
        get
        {
            lock (_sync)
            {
                return _writerWaits.Count;
            }
        }
    }

    /// <summary>The memory the channel holds for items: segments in use and spare.</summary>
    public long Bytes => (long)Segments * Length * Unsafe.SizeOf<T>();

    private bool TryWrite(T item)
    {
        ReaderWait? wake = null;
        lock (_sync)
        {
            if (_done is not null || _count >= _capacity)
            {
                return false;
            }

            Append(item);
            if (_readerWaiting)
            {
                _readerWaiting = false;
                wake = _readerWait;
            }
        }

        if (wake is not null)
        {
            wake.Registration.Unregister();
            wake.SetResult(true);
        }

        return true;
    }

    private bool TryRead(out T item)
    {
        List<WriterWait>? wake = null;
        var drained = false;
        lock (_sync)
        {
            if (_count == 0)
            {
                item = default!;
                return false;
            }

            item = Take();
            if (_writerWaits.Count > 0)
            {
                wake = [.. _writerWaits];
                _writerWaits.Clear();
            }

            drained = _count == 0 && _done is not null;
        }

        if (wake is not null)
        {
            Release(wake, true);
        }

        if (drained)
        {
            CompleteDrained();
        }

        return true;
    }

    private ValueTask<bool> WaitToReadAsync(CancellationToken ct)
    {
        lock (_sync)
        {
            if (_count > 0)
            {
                return new ValueTask<bool>(true);
            }

            if (_done is not null)
            {
                return _done == DoneSentinel ? new ValueTask<bool>(false) : ValueTask.FromException<bool>(_done);
            }

            if (ct.IsCancellationRequested)
            {
                return ValueTask.FromCanceled<bool>(ct);
            }

            if (_readerWaiting)
            {
                throw new InvalidOperationException("SegmentedChannel has one reader: a read is already waiting.");
            }

            _readerWait.Reset();
            _readerWaiting = true;
            _readerToken = ct;
            // Registered under the lock: a token cancelled meanwhile runs the callback here, and the lock is re-entrant.
            _readerWait.Registration = ct.UnsafeRegister(static (state, token) => ((SegmentedChannel<T>)state!).CancelRead(token), this);
            return new ValueTask<bool>(_readerWait, _readerWait.Version);
        }
    }

    private void CancelRead(CancellationToken token)
    {
        lock (_sync)
        {
            if (!_readerWaiting || _readerToken != token)
            {
                return;
            }

            _readerWaiting = false;
        }

        _readerWait.SetException(new OperationCanceledException(token));
    }

    private ValueTask<bool> WaitToWriteAsync(CancellationToken ct)
    {
        lock (_sync)
        {
            if (_done is not null)
            {
                return _done == DoneSentinel ? new ValueTask<bool>(false) : ValueTask.FromException<bool>(_done);
            }

            if (_count < _capacity)
            {
                return new ValueTask<bool>(true);
            }

            if (ct.IsCancellationRequested)
            {
                return ValueTask.FromCanceled<bool>(ct);
            }

            // Only under backpressure (a full buffer), so an allocation per wait costs nothing that matters.
            var wait = new WriterWait();
            _writerWaits.Add(wait);
            wait.Registration = ct.UnsafeRegister(static (state, token) =>
            {
                var (channel, w) = ((SegmentedChannel<T>, WriterWait))state!;
                channel.CancelWrite(w, token);
            }, (this, wait));
            return new ValueTask<bool>(wait.Task);
        }
    }

    private void CancelWrite(WriterWait wait, CancellationToken token)
    {
        lock (_sync)
        {
            if (!_writerWaits.Remove(wait))
            {
                return;
            }
        }

        wait.TrySetCanceled(token);
    }

    private bool TryComplete(Exception? error)
    {
        ReaderWait? reader = null;
        List<WriterWait> writers;
        bool drained;
        lock (_sync)
        {
            if (_done is not null)
            {
                return false;
            }

            _done = error ?? DoneSentinel;
            if (_readerWaiting)
            {
                _readerWaiting = false;
                reader = _readerWait;
            }

            writers = [.. _writerWaits];
            _writerWaits.Clear();
            drained = _count == 0;
        }

        if (reader is not null)
        {
            reader.Registration.Unregister();
            if (error is null)
            {
                reader.SetResult(false);
            }
            else
            {
                reader.SetException(error);
            }
        }

        if (error is null)
        {
            Release(writers, false);
        }
        else
        {
            foreach (var w in writers)
            {
                w.Registration.Unregister();
                w.TrySetException(error);
            }
        }

        if (drained)
        {
            CompleteDrained();
        }

        return true;
    }

    private void CompleteDrained()
    {
        var done = _done!;
        if (done == DoneSentinel)
        {
            _completion.TrySetResult();
        }
        else if (done is OperationCanceledException oce)
        {
            _completion.TrySetCanceled(oce.CancellationToken);
        }
        else
        {
            _completion.TrySetException(done);
        }
    }

    private static void Release(List<WriterWait> writers, bool result)
    {
        foreach (var w in writers)
        {
            w.Registration.Unregister();
            w.TrySetResult(result);
        }
    }

    /// <summary>Under the lock, with room.</summary>
    private void Append(T item)
    {
        if (_tail is null)
        {
            _head = _tail = Rent();
            _headIndex = _tailIndex = 0;
        }
        else if (_tailIndex == _tail.Items.Length)
        {
            var next = Rent();
            _tail.Next = next;
            _tail = next;
            _tailIndex = 0;
        }

        _tail.Items[_tailIndex++] = item;
        _count++;
    }

    /// <summary>Under the lock, with at least one item.</summary>
    private T Take()
    {
        var head = _head!;
        var item = head.Items[_headIndex];
        if (RuntimeHelpers.IsReferenceOrContainsReferences<T>())
        {
            head.Items[_headIndex] = default!;
        }

        _headIndex++;
        _count--;
        if (_count == 0)
        {
            // Empty: head and tail are one segment; start it over.
            _headIndex = _tailIndex = 0;
        }
        else if (_headIndex == head.Items.Length)
        {
            _head = head.Next;
            _headIndex = 0;
            head.Next = null;
            Return(head);
        }

        return item;
    }

    private Segment Rent()
    {
        if (_spare is { } segment)
        {
            _spare = segment.Next;
            segment.Next = null;
            _spareCount--;
            return segment;
        }

        _segments++;
        return new Segment(Length);
    }

    private void Return(Segment segment)
    {
        if (_spareCount < MaxSpareSegments)
        {
            segment.Next = _spare;
            _spare = segment;
            _spareCount++;
        }
        else
        {
            _segments--;
        }
    }

    private sealed class Segment(int length)
    {
        public readonly T[] Items = new T[length];
        public Segment? Next;
    }

    /// <summary>The one reader's wait, reused from one wait to the next: no allocation per batch.</summary>
    private sealed class ReaderWait : IValueTaskSource<bool>
    {
        private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };

        public CancellationTokenRegistration Registration { get; set; }

        public short Version => _core.Version;

        public void Reset() => _core.Reset();

        public void SetResult(bool result) => _core.SetResult(result);

        public void SetException(Exception error) => _core.SetException(error);

        public bool GetResult(short token) => _core.GetResult(token);

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
            => _core.OnCompleted(continuation, state, token, flags);
    }

    private sealed class WriterWait() : TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        public CancellationTokenRegistration Registration { get; set; }
    }

    private sealed class SegmentReader(SegmentedChannel<T> channel) : ChannelReader<T>
    {
        public override Task Completion => channel._completion.Task;

        public override bool CanCount => true;

        public override int Count
        {
            get
            {
                lock (channel._sync)
                {
                    return channel._count;
                }
            }
        }

        public override bool CanPeek => true;

        public override bool TryRead(out T item) => channel.TryRead(out item);

        public override bool TryPeek(out T item)
        {
            lock (channel._sync)
            {
                if (channel._count == 0)
                {
                    item = default!;
                    return false;
                }

                item = channel._head!.Items[channel._headIndex];
                return true;
            }
        }

        public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default) => channel.WaitToReadAsync(cancellationToken);
    }

    private sealed class SegmentWriter(SegmentedChannel<T> channel) : ChannelWriter<T>
    {
        public override bool TryWrite(T item) => channel.TryWrite(item);

        public override ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken = default) => channel.WaitToWriteAsync(cancellationToken);

        public override bool TryComplete(Exception? error = null) => channel.TryComplete(error);
    }
}
