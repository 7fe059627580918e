using System.Globalization;
using System.Net;

namespace OrderBookIngestor.Exchange;

/// <summary>
/// Keeps REST calls inside Binance's request-weight budget: at most N requests in flight, no request that
/// would push the minute's used weight (read from X-MBX-USED-WEIGHT-1M) past the budget, a pause on 429
/// and a full stop on 418 until Retry-After has passed. A reconnect of 200 symbols must not get the IP banned.
/// </summary>
public sealed class RestWeightGate : IDisposable
{
    private readonly SemaphoreSlim _inFlight;
    private readonly TimeProvider _time;
    private readonly int _budgetPerMinute;
    private readonly Lock _gate = new();
    private long _minute;
    private int _usedThisMinute;
    private DateTimeOffset _blockedUntil;

    public RestWeightGate(int budgetPerMinute, int maxInFlight, TimeProvider time)
    {
        _budgetPerMinute = budgetPerMinute;
        _inFlight = new SemaphoreSlim(maxInFlight, maxInFlight);
        _time = time;
    }

    public int UsedThisMinute
    {
        get
        {
            lock (_gate)
            {
                return CurrentMinute() == _minute ? _usedThisMinute : 0;
            }
        }
    }

    public DateTimeOffset BlockedUntil
    {
        get
        {
            lock (_gate)
            {
                return _blockedUntil;
            }
        }
    }

    /// <summary>Waits for a slot and for room in the budget; dispose the result when the response is handled.</summary>
    public async Task<IDisposable> AcquireAsync(int weight, CancellationToken ct)
    {
        await _inFlight.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            while (true)
            {
                TimeSpan wait;
                lock (_gate)
                {
                    var now = _time.GetUtcNow();
                    var minute = CurrentMinute();
                    if (minute != _minute)
                    {
                        _minute = minute;
                        _usedThisMinute = 0;
                    }

                    if (now < _blockedUntil)
                    {
                        wait = _blockedUntil - now;
                    }
                    else if (_usedThisMinute + weight > _budgetPerMinute)
                    {
                        wait = TimeSpan.FromMilliseconds(60_000 - (now.ToUnixTimeMilliseconds() % 60_000) + 10);
                    }
                    else
                    {
                        // Count it now; the response header corrects the figure when it comes.
                        _usedThisMinute += weight;
                        return new Release(_inFlight);
                    }
                }

                await Task.Delay(wait, _time, ct).ConfigureAwait(false);
            }
        }
        catch
        {
            _inFlight.Release();
            throw;
        }
    }

    /// <summary>Learns the used weight and any ban from a response.</summary>
    public void Observe(HttpResponseMessage response)
    {
        lock (_gate)
        {
            if (response.Headers.TryGetValues("X-MBX-USED-WEIGHT-1M", out var values)
                && int.TryParse(values.FirstOrDefault(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var used))
            {
                _minute = CurrentMinute();
                _usedThisMinute = Math.Max(_usedThisMinute, used);
            }

            if (response.StatusCode is HttpStatusCode.TooManyRequests or (HttpStatusCode)418)
            {
                var retryAfter = response.Headers.RetryAfter?.Delta
                    ?? (response.Headers.RetryAfter?.Date is { } date ? date - _time.GetUtcNow() : (TimeSpan?)null)
                    ?? TimeSpan.FromSeconds(response.StatusCode == HttpStatusCode.TooManyRequests ? 60 : 120);
                var until = _time.GetUtcNow() + (retryAfter > TimeSpan.Zero ? retryAfter : TimeSpan.FromSeconds(1));
                if (until > _blockedUntil)
                {
                    _blockedUntil = until;
                }
            }
        }
    }

    public void Dispose() => _inFlight.Dispose();

    private long CurrentMinute() => _time.GetUtcNow().ToUnixTimeMilliseconds() / 60_000;

    private sealed class Release(SemaphoreSlim semaphore) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0)
            {
                semaphore.Release();
            }
        }
    }
}
