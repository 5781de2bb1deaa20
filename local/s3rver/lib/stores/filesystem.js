'use strict';

const crypto = require('crypto');
const fs = require('fs-extra');
const { Readable, Transform } = require('stream');
const { pipeline } = require('stream/promises');
const { pick, pickBy, sortBy, zip } = require('lodash');
const path = require('path');
const { format } = require('util');

const { getConfigModel } = require('../models/config');
const S3Bucket = require('../models/bucket');
const S3Object = require('../models/object');
const { concatStreams } = require('../utils');
const { checkPartNumber, checkUploadId, inside } = require('../opentrail-guards');

const S3RVER_SUFFIX = '%s._S3rver_%s';

// opentrail: S3 orders keys by their UTF-8 bytes (not by UTF-16 code units, as `<` does).
const compareKeys = (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b));

// opentrail: writes to one key run one at a time (in this process), so the If-None-Match check
// and the object/md5/metadata files of concurrent PUTs of the same key never interleave.
const keyLocks = new Map();
async function withKeyLock(lockKey, fn) {
  const previous = keyLocks.get(lockKey) || Promise.resolve();
  let release;
  const current = new Promise(resolve => (release = resolve));
  const tail = previous.then(() => current);
  keyLocks.set(lockKey, tail);
  await previous;
  try {
    return await fn();
  } finally {
    release();
    if (keyLocks.get(lockKey) === tail) keyLocks.delete(lockKey);
  }
}

class FilesystemStore {
  static decodeKeyPath(keyPath) {
    return process.platform === 'win32'
      ? keyPath.replace(/&../g, ent =>
          Buffer.from(ent.slice(1), 'hex').toString(),
        )
      : keyPath;
  }

  static encodeKeyPath(key) {
    return process.platform === 'win32'
      ? key.replace(
          /[<>:"\\|?*]/g,
          ch => '&' + Buffer.from(ch, 'utf8').toString('hex'),
        )
      : key;
  }

  constructor(rootDirectory) {
    this.rootDirectory = rootDirectory;
  }

  // helpers
  // opentrail: every path is resolved and refused (AccessDenied) unless it lies inside the store
  // (a bucket) or inside its bucket (anything else), whatever the name or key that led there.
  getBucketPath(bucketName) {
    return inside(this.rootDirectory, path.join(this.rootDirectory, bucketName), {
      child: true,
    });
  }

  getResourcePath(bucket, key = '', resource) {
    const parts = FilesystemStore.encodeKeyPath(key).split('/');
    const suffix = format(S3RVER_SUFFIX, parts.pop(), resource);
    return inside(
      this.getBucketPath(bucket),
      path.join(this.rootDirectory, bucket, ...parts, suffix),
    );
  }

  // opentrail: an upload's directory, for an upload id of CreateMultipartUpload's shape only.
  getUploadPath(bucket, uploadId, partNumber) {
    checkUploadId(uploadId);
    const rest = partNumber === undefined ? [] : [String(partNumber)];
    if (partNumber !== undefined) checkPartNumber(partNumber);
    return inside(
      this.getBucketPath(bucket),
      path.join(this.getResourcePath(bucket, undefined, 'uploads'), uploadId, ...rest),
    );
  }

  async getMetadata(bucket, key) {
    const objectPath = this.getResourcePath(bucket, key, 'object');
    const metadataPath = this.getResourcePath(bucket, key, 'metadata.json');

    // this is expected to throw if the object doesn't exist
    const stat = await fs.stat(objectPath);
    const [storedMetadata, md5] = await Promise.all([
      fs
        .readFile(metadataPath)
        .then(JSON.parse)
        .catch(err => {
          // opentrail: a metadata file cut short by a crash (before putMetadata wrote files
          // atomically) reads as no stored metadata instead of failing every request forever.
          if (err.code === 'ENOENT' || err instanceof SyntaxError) return undefined;
          throw err;
        }),
      fs
        .readFile(`${objectPath}.md5`)
        .then(md5 => md5.toString())
        .catch(async err => {
          if (err.code !== 'ENOENT') throw err;
          // create the md5 file if it doesn't already exist
          const md5 = await new Promise((resolve, reject) => {
            const stream = fs.createReadStream(objectPath);
            const md5Context = crypto.createHash('md5');
            stream.on('error', reject);
            stream.on('data', chunk => md5Context.update(chunk, 'utf8'));
            stream.on('end', () => resolve(md5Context.digest('hex')));
          });
          await fs.writeFile(`${objectPath}.md5`, md5);
          return md5;
        }),
    ]);

    return {
      ...storedMetadata,
      etag: JSON.stringify(md5),
      'last-modified': stat.mtime.toUTCString(),
      'content-length': stat.size,
    };
  }

  async putMetadata(bucket, key, metadata, md5) {
    const metadataPath = this.getResourcePath(bucket, key, 'metadata.json');
    const md5Path = this.getResourcePath(bucket, key, 'object.md5');

    const json = {
      ...pick(metadata, S3Object.ALLOWED_METADATA),
      ...pickBy(metadata, (value, key) => key.startsWith('x-amz-meta-')),
    };

    // opentrail: temporary file + rename, so a process killed mid-write leaves the old file or
    // the new one whole, never a truncated one.
    const writeAtomic = async (target, data) => {
      const temp = `${target}.${crypto.randomBytes(8).toString('hex')}.tmp`;
      await fs.writeFile(temp, data);
      await fs.rename(temp, target);
    };
    if (md5) await writeAtomic(md5Path, md5);
    await writeAtomic(metadataPath, JSON.stringify(json, null, 2));
  }

  // store implementation

  reset() {
    const list = fs.readdirSync(this.rootDirectory);
    for (const file of list) {
      fs.removeSync(path.join(this.rootDirectory, file));
    }
  }

  async listBuckets() {
    const list = await fs.readdir(this.rootDirectory);
    const buckets = await Promise.all(
      list.map(filename => this.getBucket(filename)),
    );
    return buckets.filter(Boolean);
  }

  async getBucket(bucket) {
    const bucketPath = this.getBucketPath(bucket);
    try {
      const stat = await fs.stat(bucketPath);
      if (!stat.isDirectory()) return null;
      return new S3Bucket(bucket, stat.birthtime);
    } catch (err) {
      if (err.code === 'ENOENT') return null;
      throw err;
    }
  }

  async putBucket(bucket) {
    const bucketPath = this.getBucketPath(bucket);
    await fs.mkdirp(bucketPath, 0o0755);
    return this.getBucket(bucket);
  }

  async deleteBucket(bucket) {
    return fs.remove(this.getBucketPath(bucket));
  }

  // opentrail: yields the keys under dirPath in S3's order (UTF-8 bytes of the whole key), not
  // in directory order. A key "a/b" lives in directory "a", so a directory sorts as its name
  // plus "/": every key below it starts with that, and a sibling's key can never continue it.
  // shouldEnter(keyPrefix) prunes directories; it is asked lazily, so it may use the progress
  // of the listing.
  *walkKeys(dirPath, keyPrefix, shouldEnter) {
    const objectSuffix = format(S3RVER_SUFFIX, '', 'object');
    let dirents;
    try {
      dirents = fs.readdirSync(dirPath, { withFileTypes: true });
    } catch (err) {
      if (err.code === 'ENOENT') return; // removed meanwhile (deleteObject prunes directories)
      throw err;
    }
    const entries = [];
    for (const dirent of dirents) {
      const name = FilesystemStore.decodeKeyPath(dirent.name);
      if (dirent.isDirectory()) {
        if (keyPrefix === '' && name === format(S3RVER_SUFFIX, '', 'uploads')) continue;
        entries.push({ key: `${keyPrefix}${name}/`, dir: dirent.name });
      } else if (name.endsWith(objectSuffix)) {
        entries.push({ key: keyPrefix + name.slice(0, -objectSuffix.length) });
      }
    }
    for (const entry of entries) entry.bytes = Buffer.from(entry.key);
    entries.sort((a, b) => Buffer.compare(a.bytes, b.bytes));
    for (const entry of entries) {
      if (entry.dir === undefined) {
        yield entry.key;
      } else if (shouldEnter(entry.key)) {
        yield* this.walkKeys(path.join(dirPath, entry.dir), entry.key, shouldEnter);
      }
    }
  }

  // opentrail: lists like S3. Keys and common prefixes are one sequence in byte order, and a page
  // holds its first maxKeys entries greater than startAfter; `nextMarker` (the page's last
  // entry, a key or a common prefix) resumes right after it. A common prefix given as the
  // marker is skipped whole. So pages never skip nor repeat an entry, however many keys.
  async listObjects(bucket, options) {
    const {
      delimiter = '',
      startAfter = '',
      prefix = '',
      maxKeys = Infinity,
    } = options;
    const bucketPath = this.getBucketPath(bucket);

    // the common prefix a key rolls up into, if any
    const rollUp = key => {
      const idx = delimiter ? key.indexOf(delimiter, prefix.length) : -1;
      return idx === -1 ? undefined : key.slice(0, idx + delimiter.length);
    };
    // the last common prefix listed (or given as the marker): its other keys are skipped
    let lastPrefix =
      startAfter.startsWith(prefix) && rollUp(startAfter) === startAfter
        ? startAfter
        : undefined;

    const it = this.walkKeys(
      bucketPath,
      '',
      dirKey =>
        // enter only directories that can hold a key of this page
        (dirKey.startsWith(prefix) || prefix.startsWith(dirKey)) &&
        (startAfter.startsWith(dirKey) || compareKeys(dirKey, startAfter) > 0) &&
        !(lastPrefix !== undefined && dirKey.startsWith(lastPrefix)),
    );

    const commonPrefixes = [];
    const keys = [];
    let isTruncated = false;
    let nextMarker;
    for (const key of it) {
      if (compareKeys(key, startAfter) <= 0 || !key.startsWith(prefix)) {
        continue;
      }
      const commonPrefix = rollUp(key);
      if (commonPrefix !== undefined && commonPrefix === lastPrefix) {
        continue;
      }
      if (keys.length + commonPrefixes.length >= maxKeys) {
        isTruncated = true;
        break;
      }
      if (commonPrefix !== undefined) {
        commonPrefixes.push(commonPrefix);
        lastPrefix = nextMarker = commonPrefix;
      } else {
        keys.push(key);
        nextMarker = key;
      }
    }

    const metadataArr = await Promise.all(
      keys.map(key =>
        this.getMetadata(bucket, key).catch(err => {
          if (err.code === 'ENOENT') return undefined;
          throw err;
        }),
      ),
    );

    return {
      objects: zip(keys, metadataArr)
        .filter(([, metadata]) => metadata !== undefined)
        .map(([key, metadata]) => new S3Object(bucket, key, null, metadata)),
      commonPrefixes,
      isTruncated,
      nextMarker,
    };
  }

  async existsObject(bucket, key) {
    const objectPath = this.getResourcePath(bucket, key, 'object');
    try {
      await fs.stat(objectPath);
      return true;
    } catch (err) {
      if (err.code === 'ENOENT') return false;
      throw err;
    }
  }

  async getObject(bucket, key, options) {
    try {
      const metadata = await this.getMetadata(bucket, key);
      const lastByte = Math.max(0, Number(metadata['content-length']) - 1);
      const range = {
        start: (options && options.start) || 0,
        end: Math.min((options && options.end) || Infinity, lastByte),
      };

      if (range.start < 0 || Math.min(range.end, lastByte) < range.start) {
        // the range is not satisfiable
        const object = new S3Object(bucket, key, null, metadata);
        if (options && (options.start !== undefined || options.end)) {
          object.range = range;
        }
        return object;
      }

      const content = await new Promise((resolve, reject) => {
        const stream = fs
          .createReadStream(this.getResourcePath(bucket, key, 'object'), range)
          .on('error', reject)
          .on('open', () => resolve(stream));
      });
      const object = new S3Object(bucket, key, content, metadata);
      if (options && (options.start !== undefined || options.end)) {
        object.range = range;
      }
      return object;
    } catch (err) {
      if (err.code === 'ENOENT') return null;
      throw err;
    }
  }

  async putObject(object, options = {}) {
    const objectPath = this.getResourcePath(
      object.bucket,
      object.key,
      'object',
    );

    await fs.mkdirp(path.dirname(objectPath));

    // opentrail: the body goes to a temporary file first and is published in one step, so a
    // reader never sees half an object and a failed or aborted upload leaves nothing behind.
    const tempPath = `${objectPath}.${crypto.randomBytes(8).toString('hex')}.tmp`;
    const md5Context = crypto.createHash('md5');
    let size = 0;
    try {
      await pipeline(
        Buffer.isBuffer(object.content)
          ? Readable.from([object.content])
          : object.content,
        new Transform({
          transform(chunk, encoding, callback) {
            md5Context.update(chunk, encoding);
            size += chunk.length;
            callback(null, chunk);
          },
        }),
        fs.createWriteStream(tempPath),
      );
    } catch (err) {
      await fs.remove(tempPath);
      throw err;
    }
    const md5 = md5Context.digest('hex');

    return withKeyLock(objectPath, async () => {
      try {
        if (options.ifNoneMatch) {
          // opentrail: If-None-Match: * -- link() fails with EEXIST when the key exists, so the
          // check and the create are one atomic step (even across processes). null = 412.
          try {
            await fs.link(tempPath, objectPath);
          } catch (err) {
            if (err.code === 'EEXIST') return null;
            throw err;
          }
        } else {
          await fs.rename(tempPath, objectPath);
        }
      } finally {
        await fs.remove(tempPath); // still there after link() or a failure
      }
      await this.putMetadata(object.bucket, object.key, object.metadata, md5);
      return { size, md5 };
    });
  }

  async copyObject(
    srcBucket,
    srcKey,
    destBucket,
    destKey,
    replacementMetadata,
  ) {
    const srcObjectPath = this.getResourcePath(srcBucket, srcKey, 'object');
    const destObjectPath = this.getResourcePath(destBucket, destKey, 'object');

    if (srcObjectPath !== destObjectPath) {
      await fs.mkdirp(path.dirname(destObjectPath));
      await fs.copy(srcObjectPath, destObjectPath);
    }

    if (replacementMetadata) {
      await this.putMetadata(destBucket, destKey, replacementMetadata);
      return this.getMetadata(destBucket, destKey);
    } else {
      if (srcObjectPath !== destObjectPath) {
        await Promise.all([
          fs.copy(
            this.getResourcePath(srcBucket, srcKey, 'metadata.json'),
            this.getResourcePath(destBucket, destKey, 'metadata.json'),
          ),
          fs.copy(
            this.getResourcePath(srcBucket, srcKey, 'object.md5'),
            this.getResourcePath(destBucket, destKey, 'object.md5'),
          ),
        ]);
      }
      return this.getMetadata(destBucket, destKey);
    }
  }

  async deleteObject(bucket, key) {
    await Promise.all(
      [
        this.getResourcePath(bucket, key, 'object'),
        this.getResourcePath(bucket, key, 'object.md5'),
        this.getResourcePath(bucket, key, 'metadata.json'),
      ].map(filePath =>
        fs.unlink(filePath).catch(err => {
          if (err.code !== 'ENOENT') throw err;
        }),
      ),
    );
    // clean up empty directories
    const bucketPath = this.getBucketPath(bucket);
    const parts = key.split('/');
    // the last part isn't a directory (it's embedded into the file name)
    parts.pop();
    while (
      parts.length &&
      !fs.readdirSync(inside(bucketPath, path.join(bucketPath, ...parts))).length
    ) {
      await fs.rmdir(inside(bucketPath, path.join(bucketPath, ...parts)));
      parts.pop();
    }
  }

  async initiateUpload(bucket, key, uploadId, metadata) {
    const uploadDir = this.getUploadPath(bucket, uploadId);

    await fs.mkdirp(uploadDir);

    await Promise.all([
      fs.writeFile(path.join(uploadDir, 'key'), key),
      fs.writeFile(path.join(uploadDir, 'metadata'), JSON.stringify(metadata)),
    ]);
  }

  async putPart(bucket, uploadId, partNumber, content) {
    const partPath = this.getUploadPath(bucket, uploadId, partNumber.toString());

    await fs.mkdirp(path.dirname(partPath));

    const [size, md5] = await new Promise((resolve, reject) => {
      const writeStream = fs.createWriteStream(partPath);
      const md5Context = crypto.createHash('md5');
      let totalLength = 0;

      content
        .pipe(
          new Transform({
            transform(chunk, encoding, callback) {
              md5Context.update(chunk, 'binary');
              totalLength += chunk.length;
              return callback(null, chunk);
            },
          }),
        )
        .on('error', reject)
        .on('finish', () => {
          resolve([totalLength, md5Context.digest('hex')]);
        })
        .pipe(writeStream);
    });
    await fs.writeFile(`${partPath}.md5`, md5);
    return { size, md5 };
  }

  async putObjectMultipart(bucket, uploadId, parts, options) {
    const uploadDir = this.getUploadPath(bucket, uploadId);
    const [key, metadata] = await Promise.all([
      fs.readFile(path.join(uploadDir, 'key')).then(data => data.toString()),
      fs.readFile(path.join(uploadDir, 'metadata')).then(JSON.parse),
    ]);
    const partStreams = sortBy(parts, part => part.number).map(part =>
      fs.createReadStream(
        this.getUploadPath(bucket, uploadId, part.number.toString()),
      ),
    );
    const object = new S3Object(
      bucket,
      key,
      concatStreams(partStreams),
      metadata,
    );
    const result = await this.putObject(object, options);
    if (result) await fs.remove(uploadDir); // opentrail: kept after a 412, for a retry/abort
    return result;
  }

  async getSubresource(bucket, key, resourceType) {
    const resourcePath = this.getResourcePath(
      bucket,
      key,
      `${resourceType}.xml`,
    );

    const Model = getConfigModel(resourceType);

    try {
      const data = await fs.readFile(resourcePath);
      return new Model(data.toString());
    } catch (err) {
      if (err.code === 'ENOENT') return null;
      throw err;
    }
  }

  async putSubresource(bucket, key, resource) {
    const resourcePath = this.getResourcePath(
      bucket,
      key,
      `${resource.type}.xml`,
    );
    await fs.writeFile(resourcePath, resource.toXML(2));
  }

  async deleteSubresource(bucket, key, resourceType) {
    const resourcePath = this.getResourcePath(
      bucket,
      key,
      `${resourceType}.xml`,
    );
    try {
      await fs.unlink(resourcePath);
    } catch (err) {
      if (err.code !== 'ENOENT') throw err;
    }
  }
}

module.exports = FilesystemStore;
