using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Observability;
using Serilog.Extensions.Logging;

namespace OrderBookIngestor.Hosting;

/// <summary>Builds the daemon's host: the pipeline, the summary line, and Kestrel for /health, /metrics and the read API.</summary>
public static class IngestorHost
{
    /// <param name="environment">Where NOTIFY_SOCKET and WATCHDOG_USEC come from (tests pass their own).</param>
    /// <param name="reloadSource">Re-reads the configuration on SIGHUP; null re-uses <paramref name="options"/> (listing refresh only).</param>
    public static IHost Build(IngestorOptions options, ILoggerProvider loggerProvider, TimeProvider? time = null, Func<string, string?>? environment = null,
        Func<IngestorOptions>? reloadSource = null)
    {
        time ??= TimeProvider.System;
        environment ??= Environment.GetEnvironmentVariable;
        var metrics = new IngestorMetrics(time);
        var status = new PipelineStatus();
        var httpEnabled = !string.Equals(options.Http, "none", StringComparison.OrdinalIgnoreCase);
        if (httpEnabled)
        {
            // Before anything starts: a read API on a non-loopback address without a token refuses to start.
            var access = ReadApiAccess.Resolve(options, environment);
            var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = HostArgs });
            Configure(builder.Services, builder.Logging, options, loggerProvider, metrics, status, time, environment, reloadSource);
            if (!OptionsValidator.TryParseHostPort(options.Http, out var host, out var port))
            {
                throw new ConfigurationException($"Http: '{options.Http}' is not host:port.");
            }

            builder.WebHost.UseKestrel(k =>
            {
                if (IPAddress.TryParse(host, out var ip))
                {
                    k.Listen(ip, port);
                }
                else if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
                {
                    k.ListenLocalhost(port);
                }
                else
                {
                    k.ListenAnyIP(port);
                }
            });
            if (access.Enabled)
            {
                builder.Services.AddSingleton(_ => new ReadApi(ReadApi.CreateDataSource(options.Database!, options.ReadApiConcurrency), access,
                    options.ReadApiConcurrency, options.ReadApiStatementTimeoutMs));
            }

            var app = builder.Build();
            HttpEndpoints.Map(app, metrics, status);
            app.Services.GetService<ReadApi>()?.Map(app);
            return app;
        }

        var plain = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], DisableDefaults = true });
        Configure(plain.Services, plain.Logging, options, loggerProvider, metrics, status, time, environment, reloadSource);
        return plain.Build();
    }

    /// <summary>The web host reads appsettings.json only for its own defaults; watching the working directory for
    /// changes put a ".NET File Watch" thread in every profile (~4 % of the daemon's samples at 2,000 msg/s, waking on
    /// every spool and log write). Our settings are loaded and reloaded by <see cref="OptionsLoader"/>.</summary>
    internal static readonly string[] HostArgs = ["--hostBuilder:reloadConfigOnChange=false"];

    private static void Configure(IServiceCollection services, ILoggingBuilder logging, IngestorOptions options,
        ILoggerProvider loggerProvider, IngestorMetrics metrics, PipelineStatus status, TimeProvider time, Func<string, string?> environment, Func<IngestorOptions>? reloadSource)
    {
        logging.ClearProviders();
        logging.AddProvider(loggerProvider);
        logging.SetMinimumLevel(LogLevel.Trace);
        // The host reports a failed start with a stack trace; the daemon reports it itself in one line (IngestorHost.RunAsync,
        // IngestionPipeline), so the host's own failure lines are kept out.
        logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.Critical);
        services.Configure<HostOptions>(h =>
        {
            // The pipeline drains within DrainTimeoutSeconds; the host must wait a little longer than that.
            h.ShutdownTimeout = TimeSpan.FromSeconds(options.DrainTimeoutSeconds + 10);
            h.BackgroundServiceExceptionBehavior = BackgroundServiceExceptionBehavior.StopHost;
        });
        services.AddSingleton(options);
        services.AddSingleton(metrics);
        services.AddSingleton(status);
        services.AddSingleton(time);
        services.AddSingleton(_ => CreateDataSource(options.Database!));
        services.AddSingleton(_ => new HttpClient { Timeout = TimeSpan.FromSeconds(30) });
        services.AddSingleton(sp => new IngestionPipeline(options, sp.GetRequiredService<NpgsqlDataSource>(), metrics, status, time,
            sp.GetRequiredService<ILoggerFactory>(), sp.GetRequiredService<IHostApplicationLifetime>(), sp.GetRequiredService<HttpClient>(), reloadSource));
        services.AddHostedService(sp => sp.GetRequiredService<IngestionPipeline>());
        services.AddHostedService(sp => new SummaryReporter(options, metrics, status, time, sp.GetRequiredService<ILoggerFactory>()));
        services.AddHostedService(sp => new HeapTrimmer(time, options.HeapSlackMegabytes, metrics, sp.GetRequiredService<ILoggerFactory>().CreateLogger("OrderBookIngestor.Memory")));
        services.AddSingleton(_ => new SystemdNotifier(environment("NOTIFY_SOCKET")));
        services.AddHostedService(sp => new SystemdService(sp.GetRequiredService<SystemdNotifier>(),
            SystemdNotifier.WatchdogInterval(environment, Environment.ProcessId), metrics, status, options, time,
            sp.GetRequiredService<ILoggerFactory>(), sp.GetRequiredService<IHostApplicationLifetime>()));
    }

    public static NpgsqlDataSource CreateDataSource(string database)
    {
        var builder = new NpgsqlSlimDataSourceBuilder(DatabaseConnection.ToNpgsql(database));
        builder.ConnectionStringBuilder.ApplicationName ??= "orderbook-ingestor";
        return builder.Build();
    }

    public static async Task<int> RunAsync(IngestorOptions options, Func<IngestorOptions>? reloadSource, CancellationToken ct)
    {
        using var serilog = LoggingSetup.Create(options);
        using var provider = new SerilogLoggerProvider(serilog);
        Log.Starting(provider.CreateLogger("OrderBookIngestor"), ThisAssembly.Version,
            options.Symbols.Count <= 10 ? string.Join(",", options.Symbols) : $"{options.Symbols.Count} given", string.Join(",", options.Channels), DatabaseConnection.Redact(options.Database));
        IHost built;
        try
        {
            built = Build(options, provider, reloadSource: reloadSource);
        }
        catch (ConfigurationException ex)
        {
            Log.StartupFailed(provider.CreateLogger("OrderBookIngestor"), ex.Message);
            return ExitCodes.Configuration;
        }

        using var host = built;
        var pipeline = host.Services.GetRequiredService<IngestionPipeline>();
        // SIGHUP re-reads the configuration (systemctl reload); cancelling keeps the default action (exit) away.
        using var hangup = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGHUP, context =>
        {
            context.Cancel = true;
            pipeline.RequestReload("SIGHUP");
        });
        if (IgnoredSignals.IsIgnoredHere(IgnoredSignals.SigHup))
        {
            Log.HangupIgnored(provider.CreateLogger("OrderBookIngestor"));
        }

        try
        {
            await host.RunAsync(ct).ConfigureAwait(false);
        }
        catch (IOException ex) when (ex.InnerException is System.Net.Sockets.SocketException or Microsoft.AspNetCore.Connections.AddressInUseException)
        {
            // Kestrel could not bind: a setting (another process has the port), not a crash.
            Log.StartupFailed(provider.CreateLogger("OrderBookIngestor"), $"Http: cannot listen on {options.Http}: {ex.Message}");
            return ExitCodes.Configuration;
        }

        return Environment.ExitCode;
    }
}
