export { parseDicom, DicomDataset, mightBeDicom, tagLabel, type ParseDicomOptions } from './parse.js';
export {
  decodeFrame,
  describePixels,
  encapsulatedFrame,
  frameBytes,
  MAX_COMPRESSION_RATIO,
  SUPPORTED_TRANSFER_SYNTAXES,
  type DecodedFrame,
  type PixelDescription,
  type StoredArray,
} from './pixels.js';
export {
  configureDicomCodecs,
  codecConcurrency,
  type CodecFrame,
  type CodecKind,
  type CodecRunner,
  type DicomCodecConfig,
} from './codecs.js';
export { readDicomSeries, type DicomReadOptions, type DicomReadResult } from './series.js';
export { readDicomSeg, isDicomSeg, type DicomSegment, type DicomSegReadOptions, type DicomSegResult } from './seg.js';
export {
  readDicomSegLabels,
  segmentLabelValues,
  looksLikeDicomSeg,
  TOTALSEGMENTATOR_SEGMENT_IDS,
  type DicomSegLabelsResult,
  type SegLabelMapping,
  type SegValueMode,
} from './seg-labels.js';
export { writeDicomSeg, type DicomSegWriteOptions, type DicomSegWriteSegment } from './seg-writer.js';
export {
  writeDicomSeries,
  encodeDicomSeries,
  uidFromText,
  formatDS,
  type DicomWriteOptions,
  type DicomWriteResult,
} from './writer.js';
export { TAG, TS, SOP_CLASS, TRANSFER_SYNTAX_NAMES } from './tags.js';
/** Alias of parseDicom, for readers that think of it as reading one data set. */
export { parseDicom as readDicomDataset } from './parse.js';
export {
  DicomDatasetWriter,
  addCommonModules,
  codeItem,
  dicomDateTime,
  type DicomCode,
  type DicomCommonOptions,
} from './dataset-writer.js';
export {
  writeEncapsulatedPdf,
  writePlanSr,
  SR_CONCEPTS,
  ENCAPSULATED_PDF_SOP_CLASS,
  COMPREHENSIVE_3D_SR_SOP_CLASS,
  type ReportDicomOptions,
  type SrPath,
  type WrittenDicom,
} from './report-writer.js';
