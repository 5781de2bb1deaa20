'use strict';

// opentrail: checks that keep every request inside the store. Bucket names and keys become file
// paths (bucket "..", or a key segment "..", once named a directory outside the data directory),
// so names follow S3's bucket rules, keys may not hold "." or ".." segments, and every path the
// store builds is resolved and refused unless it lies inside its bucket's directory.

const path = require('path');

const S3Error = require('./models/error');

/** S3's limit on an object key, in UTF-8 bytes. */
const MAX_KEY_BYTES = 1024;

/**
 * S3's general-purpose bucket naming rules: 3-63 characters of lowercase letters, digits, dots
 * and hyphens, beginning and ending with a letter or digit, no two adjacent dots, not an IPv4
 * address, none of S3's reserved prefixes and suffixes.
 * {@link https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html}
 */
function bucketNameProblem(name) {
  if (typeof name !== 'string') return 'it is missing';
  if (name.length < 3 || name.length > 63) {
    return 'it must be between 3 and 63 characters long';
  }
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name)) {
    return 'it may contain only lowercase letters, digits, dots and hyphens, and must begin and end with a letter or a digit';
  }
  if (name.includes('..')) return 'it must not contain two adjacent dots';
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) {
    return 'it must not be formatted as an IP address';
  }
  if (/^(xn--|sthree-|amzn-s3-demo-)/.test(name)) {
    return 'it must not begin with xn--, sthree- or amzn-s3-demo-';
  }
  if (/(-s3alias|--ol-s3|--x-s3|--table-s3|\.mrap)$/.test(name)) {
    return 'it must not end with -s3alias, --ol-s3, --x-s3, --table-s3 or .mrap';
  }
  return undefined;
}

function checkBucketName(name) {
  const problem = bucketNameProblem(name);
  if (problem) {
    throw new S3Error(
      'InvalidBucketName',
      `The specified bucket is not valid: ${problem}.`,
      { BucketName: String(name) },
    );
  }
}

function checkKey(key) {
  if (typeof key !== 'string' || key === '') return;
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) {
    throw new S3Error('KeyTooLongError', 'Your key is too long', {
      MaxSizeAllowed: MAX_KEY_BYTES,
      Size: Buffer.byteLength(key, 'utf8'),
    });
  }
  if (key.includes('\0')) {
    throw new S3Error(
      'InvalidArgument',
      'Object keys must not contain a NUL character in the embedded S3 (keys are file paths).',
      { ArgumentName: 'key', ArgumentValue: encodeURIComponent(key) },
    );
  }
  if (key.split('/').some(segment => segment === '.' || segment === '..')) {
    throw new S3Error(
      'InvalidArgument',
      'Object keys must not contain a "." or ".." path segment in the embedded S3 (keys are file paths).',
      { ArgumentName: 'key', ArgumentValue: encodeURIComponent(key) },
    );
  }
}

/** The upload ids that CreateMultipartUpload hands out: 32 lowercase hex digits. */
function checkUploadId(uploadId) {
  if (typeof uploadId !== 'string' || !/^[0-9a-f]{32}$/.test(uploadId)) {
    throw new S3Error(
      'NoSuchUpload',
      'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
      { UploadId: String(uploadId) },
    );
  }
}

/** S3's part numbers: a whole number from 1 to 10,000. */
function checkPartNumber(partNumber) {
  const text = String(partNumber);
  if (!/^[1-9]\d{0,4}$/.test(text) || Number(text) > 10000) {
    throw new S3Error(
      'InvalidArgument',
      'Part number must be an integer between 1 and 10000, inclusive',
      { ArgumentName: 'partNumber', ArgumentValue: encodeURIComponent(text) },
    );
  }
}

/**
 * `target` resolved, provided it lies strictly inside `root` (also resolved), and with `child`
 * directly inside it; otherwise an AccessDenied error, whatever the name that led there.
 */
function inside(root, target, { child = false } = {}) {
  const base = path.resolve(root);
  const resolved = path.resolve(target);
  if (
    !resolved.startsWith(base + path.sep) ||
    (child && path.dirname(resolved) !== base)
  ) {
    throw new S3Error(
      'AccessDenied',
      'The request names a path outside the embedded S3 store.',
    );
  }
  return resolved;
}

module.exports = {
  bucketNameProblem,
  checkBucketName,
  checkKey,
  checkPartNumber,
  checkUploadId,
  inside,
};
