import { createHash, createPrivateKey, createPublicKey, sign } from 'node:crypto';
import {
  digestKey,
  fingerprintOfPublicKey,
  formatDigestTime,
  parseDigest,
  parseDigestKey,
  parseDigestTime,
  pkcs1FromSpki,
  serializeDigest,
  signingString,
  verifyDigestSignature,
  type DigestFile,
  type DigestKeyParts,
} from '../../lambda/core/digest-format';
import { DIGEST_TEST_PRIVATE_KEY_PEM } from '../fixtures/digest-key';

const PRIVATE = createPrivateKey(DIGEST_TEST_PRIVATE_KEY_PEM);
const SPKI = createPublicKey(PRIVATE).export({ type: 'spki', format: 'der' });
const PKCS1 = createPublicKey(PRIVATE).export({ type: 'pkcs1', format: 'der' });
// md5sum of `openssl rsa -pubout -RSAPublicKey_out -outform DER` of the fixture key.
const FINGERPRINT = '75f5a477a0b32bd0211c7bd4d970bf7c';
const HASH_A = 'a'.repeat(64);
const HASH_B = 'b'.repeat(64);
const END_10 = Date.UTC(2024, 2, 5, 10, 0, 0);
const KEY_10 =
  'AWSLogs/111111111111/CloudTrail-Digest/us-east-1/2024/03/05/111111111111_CloudTrail-Digest_us-east-1_main_us-east-1_20240305T100000Z.json.gz';

const FIRST: DigestFile = {
  awsAccountId: '111111111111',
  digestStartTime: '2024-03-05T09:00:00Z',
  digestEndTime: '2024-03-05T10:00:00Z',
  digestS3Bucket: 'bucket',
  digestS3Object: KEY_10,
  digestPublicKeyFingerprint: FINGERPRINT,
  digestSignatureAlgorithm: 'SHA256withRSA',
  newestEventTime: null,
  oldestEventTime: null,
  previousDigestS3Bucket: null,
  previousDigestS3Object: null,
  previousDigestHashValue: null,
  previousDigestHashAlgorithm: null,
  previousDigestSignature: null,
  logFiles: [],
};

const SECOND: DigestFile = {
  ...FIRST,
  digestStartTime: '2024-03-05T10:00:00Z',
  digestEndTime: '2024-03-05T11:00:00Z',
  digestS3Object: 'k2',
  newestEventTime: '2024-03-05T10:59:59Z',
  oldestEventTime: '2024-03-05T10:00:01Z',
  previousDigestS3Bucket: 'bucket',
  previousDigestS3Object: KEY_10,
  previousDigestHashValue: HASH_B,
  previousDigestHashAlgorithm: 'SHA-256',
  previousDigestSignature: 'abcd',
  logFiles: [
    {
      s3Bucket: 'logs',
      s3Object: 'l1',
      hashValue: HASH_A,
      hashAlgorithm: 'SHA-256',
      newestEventTime: '2024-03-05T10:59:59Z',
      oldestEventTime: '2024-03-05T10:00:01Z',
    },
  ],
};

describe('serializeDigest', () => {
  it.each<[string, DigestFile, string]>([
    [
      'the first digest of a chain, no log files',
      FIRST,
      `{"awsAccountId":"111111111111","digestStartTime":"2024-03-05T09:00:00Z","digestEndTime":"2024-03-05T10:00:00Z","digestS3Bucket":"bucket","digestS3Object":"${KEY_10}","digestPublicKeyFingerprint":"${FINGERPRINT}","digestSignatureAlgorithm":"SHA256withRSA","newestEventTime":null,"oldestEventTime":null,"previousDigestS3Bucket":null,"previousDigestS3Object":null,"previousDigestHashValue":null,"previousDigestHashAlgorithm":null,"previousDigestSignature":null,"logFiles":[]}`,
    ],
    [
      'a chained digest with one log file',
      SECOND,
      `{"awsAccountId":"111111111111","digestStartTime":"2024-03-05T10:00:00Z","digestEndTime":"2024-03-05T11:00:00Z","digestS3Bucket":"bucket","digestS3Object":"k2","digestPublicKeyFingerprint":"${FINGERPRINT}","digestSignatureAlgorithm":"SHA256withRSA","newestEventTime":"2024-03-05T10:59:59Z","oldestEventTime":"2024-03-05T10:00:01Z","previousDigestS3Bucket":"bucket","previousDigestS3Object":"${KEY_10}","previousDigestHashValue":"${HASH_B}","previousDigestHashAlgorithm":"SHA-256","previousDigestSignature":"abcd","logFiles":[{"s3Bucket":"logs","s3Object":"l1","hashValue":"${HASH_A}","hashAlgorithm":"SHA-256","newestEventTime":"2024-03-05T10:59:59Z","oldestEventTime":"2024-03-05T10:00:01Z"}]}`,
    ],
  ])('writes %s byte for byte', (_name, digest, expected) => {
    expect(serializeDigest(digest).toString('utf8')).toBe(expected);
  });

  it('writes the fixed field order whatever order the object was built in', () => {
    const reversed = Object.fromEntries(Object.entries(SECOND).reverse()) as unknown as DigestFile;

    expect(serializeDigest(reversed).equals(serializeDigest(SECOND))).toBe(true);
  });

  it('writes non-ASCII text as UTF-8', () => {
    const bytes = serializeDigest({ ...FIRST, digestS3Object: 'é' });

    expect(bytes.includes(Buffer.from([0xc3, 0xa9]))).toBe(true);
  });
});

describe('parseDigest', () => {
  it.each([
    ['FIRST', FIRST],
    ['SECOND', SECOND],
  ])('reads back what serializeDigest wrote (%s)', (_name, digest) => {
    expect(parseDigest(serializeDigest(digest))).toEqual(digest);
  });

  const mutate = (patch: Record<string, unknown>): Buffer =>
    Buffer.from(JSON.stringify({ ...SECOND, ...patch }));
  const without = (name: string): Buffer => {
    const copy: Record<string, unknown> = { ...SECOND };
    delete copy[name];
    return Buffer.from(JSON.stringify(copy));
  };

  it.each<[string, Buffer, RegExp]>([
    ['not JSON', Buffer.from('{"awsAccountId":'), /not UTF-8 JSON/],
    ['not UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), /not UTF-8 JSON/],
    ['a JSON array', Buffer.from('[]'), /must be a JSON object/],
    ['a missing field', without('digestEndTime'), /digestEndTime is missing/],
    ['a missing logFiles', without('logFiles'), /logFiles is missing/],
    ['a number account', mutate({ awsAccountId: 111 }), /awsAccountId must be a string/],
    ['a bad time', mutate({ digestEndTime: '2024-03-05 11:00:00' }), /digestEndTime must be/],
    ['no such date', mutate({ digestStartTime: '2024-02-30T00:00:00Z' }), /digestStartTime/],
    ['a bad algorithm', mutate({ digestSignatureAlgorithm: 'RSA' }), /digestSignatureAlgorithm/],
    ['a short fingerprint', mutate({ digestPublicKeyFingerprint: 'ab' }), /Fingerprint/],
    ['a bad previous hash', mutate({ previousDigestHashValue: 'xyz' }), /previousDigestHashValue/],
    ['non-hex signature', mutate({ previousDigestSignature: 'zz' }), /previousDigestSignature/],
    ['logFiles not an array', mutate({ logFiles: {} }), /logFiles must be an array/],
    ['a null log entry', mutate({ logFiles: [null] }), /logFiles\[0\] must be an object/],
    [
      'a log entry without hash',
      mutate({ logFiles: [{ ...SECOND.logFiles[0], hashValue: undefined }] }),
      /logFiles\[0\]\.hashValue is missing/,
    ],
    [
      'a log entry with a bad hash algorithm',
      mutate({ logFiles: [{ ...SECOND.logFiles[0], hashAlgorithm: 'MD5' }] }),
      /logFiles\[0\]\.hashAlgorithm/,
    ],
  ])('rejects %s', (_name, bytes, message) => {
    expect(() => parseDigest(bytes)).toThrow(message);
  });
});

describe('digestKey / parseDigestKey', () => {
  it.each<[string, DigestKeyParts, string]>([
    [
      'without prefix or organization',
      {
        account: '111111111111',
        region: 'us-east-1',
        trailName: 'main',
        homeRegion: 'us-east-1',
        endMs: END_10,
      },
      KEY_10,
    ],
    [
      'with prefix, organization, a trail name with underscores, seconds',
      {
        prefix: 'audit/prod',
        organizationId: 'o-abcdefghij',
        account: '222222222222',
        region: 'eu-west-1',
        trailName: 'org_trail_1',
        homeRegion: 'us-east-2',
        endMs: Date.UTC(2023, 11, 31, 23, 59, 50),
      },
      'audit/prod/AWSLogs/o-abcdefghij/222222222222/CloudTrail-Digest/eu-west-1/2023/12/31/222222222222_CloudTrail-Digest_eu-west-1_org_trail_1_us-east-2_20231231T235950Z.json.gz',
    ],
  ])('builds and parses back a key %s', (_name, parts, key) => {
    expect(digestKey(parts)).toBe(key);
    expect(parseDigestKey(key)).toEqual(parts);
  });

  it.each([
    ['a log-file key', KEY_10.replace(/CloudTrail-Digest/g, 'CloudTrail')],
    ['a folder date unlike the stamp', KEY_10.replace('/05/1111', '/06/1111')],
    ['no such date', KEY_10.replace('2024/03/05', '2024/02/30').replace('20240305', '20240230')],
    ['an hour 24', KEY_10.replace('T100000Z', 'T240000Z')],
    ['a stamp without seconds', KEY_10.replace('T100000Z', 'T1000Z')],
    ['another account in the name', KEY_10.replace('/111111111111_', '/999999999999_')],
    ['no .json.gz', KEY_10.replace('.json.gz', '.json')],
  ])('returns undefined for %s', (_name, key) => {
    expect(parseDigestKey(key)).toBeUndefined();
  });
});

describe('digest times', () => {
  it.each([
    [END_10, '2024-03-05T10:00:00Z'],
    [END_10 + 999, '2024-03-05T10:00:00Z'],
    [Date.UTC(1999, 0, 1, 1, 2, 3), '1999-01-01T01:02:03Z'],
  ])('formats %d as %s', (ms, text) => {
    expect(formatDigestTime(ms)).toBe(text);
  });

  it('parses a time back to epoch milliseconds', () => {
    expect(parseDigestTime('2024-03-05T10:00:00Z')).toBe(END_10);
  });

  it.each(['2024-03-05T10:00:00.000Z', '2024-03-05T10:00:00', '2024-13-01T00:00:00Z', ''])(
    'rejects %j',
    (text) => {
      expect(() => parseDigestTime(text)).toThrow(/YYYY-MM-DDTHH:MM:SSZ/);
    },
  );
});

describe('signingString', () => {
  it.each<[string, string | null, string]>([
    ['the first digest', null, `2024-03-05T10:00:00Z\nbucket/${KEY_10}\n${HASH_A}\nnull`],
    ['a chained digest', 'abcd', `2024-03-05T10:00:00Z\nbucket/${KEY_10}\n${HASH_A}\nabcd`],
  ])('joins the four parts for %s, no trailing newline', (_name, previous, expected) => {
    expect(signingString(FIRST, HASH_A, previous)).toBe(expected);
  });
});

describe('public keys and signatures', () => {
  const text = signingString(FIRST, HASH_A, null);
  // Computed once with `openssl dgst -sha256 -sign` semantics (PKCS#1 v1.5 is deterministic).
  const SIGNATURE =
    '46d21ec860eb0c78c84096a5a53a40993425bfc589f5815ae7e47746672f59c6597875edb9872dd06d44e36c643301128a8c1399aadb98787017db3c0168483f894136d4a41c090969c0881b914d655f59d7fe9e0f7a1e866e9ecc74f1f0348700e433ca89e502bd0c1401e7c7e4ef77356c175ea73a12e5a5999755fee50dac0bc5bfa0f6fb054fa45a26aa7e8043c17c88be0143c32024c7fe8ae0f3f1af314835645b38489682f9e92a9ec2351cbda554e1defe8c65105cacea27a67dff1ab7c3c1ec5c78499cba7495aa87eba52ed881cbfbe2cb78e3f505d16f20449c02af66b803405a83188de8e893759aedadb04911fc6d395b6996e0bac749e1acaa';

  it('converts SPKI DER to PKCS#1 DER', () => {
    expect(pkcs1FromSpki(SPKI).equals(PKCS1)).toBe(true);
  });

  it.each([
    ['PKCS#1', PKCS1],
    ['SPKI', SPKI],
  ])('fingerprints a %s key as hex MD5 of its PKCS#1 DER', (_name, der) => {
    expect(fingerprintOfPublicKey(der)).toBe(FINGERPRINT);
    expect(createHash('md5').update(PKCS1).digest('hex')).toBe(FINGERPRINT);
  });

  it('signs deterministically to the fixed signature', () => {
    expect(sign('sha256', Buffer.from(text, 'utf8'), PRIVATE).toString('hex')).toBe(SIGNATURE);
  });

  it.each<[string, string, string, Buffer, boolean]>([
    ['the right text and key', text, SIGNATURE, PKCS1, true],
    ['an SPKI key', text, SIGNATURE, SPKI, true],
    ['upper-case hex', text, SIGNATURE.toUpperCase(), PKCS1, true],
    ['another text', `${text} `, SIGNATURE, PKCS1, false],
    ['a flipped signature bit', text, `${SIGNATURE.slice(0, -1)}b`, PKCS1, false],
    ['a non-hex signature', text, 'xyz', PKCS1, false],
    ['a truncated signature', text, SIGNATURE.slice(0, 64), PKCS1, false],
    ['a garbage key', text, SIGNATURE, Buffer.from('nope'), false],
  ])('verifies a signature with %s', (_name, signedText, signature, key, expected) => {
    expect(verifyDigestSignature(signedText, signature, key)).toBe(expected);
  });
});
