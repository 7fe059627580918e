using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Hosting;

/// <summary>/health and /metrics. RequestDelegate handlers only: no reflection-based minimal-API binding in a trimmed binary.</summary>
public static class HttpEndpoints
{
    public static void Map(IEndpointRouteBuilder app, IngestorMetrics metrics, PipelineStatus parts)
    {
        app.MapGet("/health", async context =>
        {
            var status = HealthReport.Evaluate(metrics, parts, out _);
            context.Response.StatusCode = status == HealthStatus.Unhealthy ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status200OK;
            context.Response.ContentType = "application/json";
            await using var writer = new Utf8JsonWriter(context.Response.Body, new JsonWriterOptions { Indented = true });
            HealthReport.Write(writer, metrics, parts);
            await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
        });
        app.MapGet("/metrics", async context =>
        {
            context.Response.ContentType = PrometheusWriter.ContentType;
            await context.Response.WriteAsync(PrometheusWriter.Write(metrics, parts), context.RequestAborted).ConfigureAwait(false);
        });
    }
}
