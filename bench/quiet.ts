/**
 * Imported FIRST by bench/run.ts: the Lambda handler modules that the embedded runtime loads
 * build their Powertools Logger and Metrics at module load, and would otherwise print a JSON
 * line per packaged batch into the bench's stdout. An explicit environment still wins.
 */
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';

export {};
