/** @corridor/node: what needs Node (files, workers, CLI, server). Computation lives in @corridor/core. */
export { main, buildProgram } from './cli/main.js';
export { loadPath, readVolumeFile, type LoadResult, type LoadOptions } from './io/load.js';
export { sharedDataDir } from './io/shared-data.js';
export { DrrPool, prepareSharedDrrVolume } from './drr/pool.js';
export { runBenchmarks } from './bench/run.js';
export { makeReport, type MakeReportInput, type MadeReport } from './report/make.js';
export { renderReportHtml, renderReportPdf, reportTables, type RenderedImage } from './report/render.js';
