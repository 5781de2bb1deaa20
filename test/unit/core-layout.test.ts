import {
  logFileKey,
  logFolder,
  parseLogFileKey,
  uniqueFrom,
  type LogFileKeyParts,
} from '../../lambda/core/layout';

const UNIQUE = 'AbCdEfGh12345678';
const MARCH_5 = Date.UTC(2024, 2, 5, 9, 7, 59, 999);

describe('logFileKey', () => {
  it.each<[string, LogFileKeyParts, string]>([
    [
      'without prefix or organization',
      { account: '111111111111', region: 'us-east-1', deliveryMs: MARCH_5, unique: UNIQUE },
      'AWSLogs/111111111111/CloudTrail/us-east-1/2024/03/05/111111111111_CloudTrail_us-east-1_20240305T0907Z_AbCdEfGh12345678.json.gz',
    ],
    [
      'with a prefix',
      {
        prefix: 'audit/prod',
        account: '111111111111',
        region: 'eu-west-1',
        deliveryMs: MARCH_5,
        unique: UNIQUE,
      },
      'audit/prod/AWSLogs/111111111111/CloudTrail/eu-west-1/2024/03/05/111111111111_CloudTrail_eu-west-1_20240305T0907Z_AbCdEfGh12345678.json.gz',
    ],
    [
      'with an organization',
      {
        organizationId: 'o-exampleorgid',
        account: '222222222222',
        region: 'us-east-1',
        deliveryMs: MARCH_5,
        unique: UNIQUE,
      },
      'AWSLogs/o-exampleorgid/222222222222/CloudTrail/us-east-1/2024/03/05/222222222222_CloudTrail_us-east-1_20240305T0907Z_AbCdEfGh12345678.json.gz',
    ],
    [
      'with a prefix and an organization',
      {
        prefix: 'p',
        organizationId: 'o-exampleorgid',
        account: '222222222222',
        region: 'ap-south-1',
        deliveryMs: MARCH_5,
        unique: UNIQUE,
      },
      'p/AWSLogs/o-exampleorgid/222222222222/CloudTrail/ap-south-1/2024/03/05/222222222222_CloudTrail_ap-south-1_20240305T0907Z_AbCdEfGh12345678.json.gz',
    ],
    [
      'with an empty prefix (no leading slash)',
      {
        prefix: '',
        account: '111111111111',
        region: 'us-east-1',
        deliveryMs: MARCH_5,
        unique: UNIQUE,
      },
      'AWSLogs/111111111111/CloudTrail/us-east-1/2024/03/05/111111111111_CloudTrail_us-east-1_20240305T0907Z_AbCdEfGh12345678.json.gz',
    ],
    [
      'for Insights',
      {
        account: '111111111111',
        region: 'us-east-1',
        deliveryMs: MARCH_5,
        unique: UNIQUE,
        kind: 'CloudTrail-Insight',
      },
      'AWSLogs/111111111111/CloudTrail-Insight/us-east-1/2024/03/05/111111111111_CloudTrail-Insight_us-east-1_20240305T0907Z_AbCdEfGh12345678.json.gz',
    ],
    [
      'one millisecond before a new year, in UTC',
      {
        account: '111111111111',
        region: 'us-east-1',
        deliveryMs: Date.UTC(2023, 11, 31, 23, 59, 59, 999),
        unique: UNIQUE,
      },
      'AWSLogs/111111111111/CloudTrail/us-east-1/2023/12/31/111111111111_CloudTrail_us-east-1_20231231T2359Z_AbCdEfGh12345678.json.gz',
    ],
    [
      'at midnight of a leap day',
      {
        account: '111111111111',
        region: 'us-east-1',
        deliveryMs: Date.UTC(2024, 1, 29, 0, 0, 0),
        unique: UNIQUE,
      },
      'AWSLogs/111111111111/CloudTrail/us-east-1/2024/02/29/111111111111_CloudTrail_us-east-1_20240229T0000Z_AbCdEfGh12345678.json.gz',
    ],
  ])('gives the CloudTrail key %s', (_, parts, expected) => {
    // Act
    const key = logFileKey(parts);

    // Assert
    expect(key).toBe(expected);
  });

  it('the folder is the key up to its last slash', () => {
    // Arrange
    const parts = {
      prefix: 'p',
      organizationId: 'o-exampleorgid',
      account: '1',
      region: 'r',
      deliveryMs: MARCH_5,
    };

    // Act
    const folder = logFolder(parts);

    // Assert
    expect(folder).toBe('p/AWSLogs/o-exampleorgid/1/CloudTrail/r/2024/03/05/');
    expect(logFileKey({ ...parts, unique: UNIQUE }).startsWith(folder)).toBe(true);
  });
});

describe('uniqueFrom', () => {
  const seeds = [
    '',
    'a',
    'bucket\nshardId-000000000000\n1\n2\nopentrail\n111\nus-east-1',
    'ü漢字😀',
    'x'.repeat(10_000),
  ];

  it.each(seeds.map((seed) => [seed.slice(0, 40), seed]))(
    'gives 16 characters of [A-Za-z0-9] for seed %j',
    (_, seed) => {
      // Act
      const unique = uniqueFrom(seed);

      // Assert
      expect(unique).toMatch(/^[A-Za-z0-9]{16}$/);
    },
  );

  it.each(seeds.map((seed) => [seed.slice(0, 40), seed]))(
    'is deterministic for seed %j',
    (_, seed) => {
      // Act
      const first = uniqueFrom(seed);
      const second = uniqueFrom(seed);

      // Assert
      expect(second).toBe(first);
    },
  );

  it('differs by seed', () => {
    // Arrange
    const manySeeds = Array.from({ length: 5000 }, (_, i) => `shard\n${i}\n${i + 1}`);

    // Act
    const uniques = new Set(manySeeds.map(uniqueFrom));

    // Assert
    expect(uniques.size).toBe(manySeeds.length);
  });
});

describe('parseLogFileKey', () => {
  it.each<[string, LogFileKeyParts]>([
    [
      'a plain key',
      { account: '111111111111', region: 'us-east-1', deliveryMs: MARCH_5, unique: UNIQUE },
    ],
    [
      'a key with a prefix',
      {
        prefix: 'audit/prod',
        account: '111111111111',
        region: 'us-east-1',
        deliveryMs: MARCH_5,
        unique: UNIQUE,
      },
    ],
    [
      'a key with an organization',
      {
        organizationId: 'o-exampleorgid',
        account: '111111111111',
        region: 'us-east-1',
        deliveryMs: MARCH_5,
        unique: UNIQUE,
      },
    ],
    [
      'a key with both',
      {
        prefix: 'p',
        organizationId: 'o-abcdefghij',
        account: '111111111111',
        region: 'moon-base-1',
        deliveryMs: MARCH_5,
        unique: UNIQUE,
      },
    ],
    [
      'an Insights key',
      {
        account: '111111111111',
        region: 'us-east-1',
        deliveryMs: MARCH_5,
        unique: UNIQUE,
        kind: 'CloudTrail-Insight',
      },
    ],
  ])('round-trips %s', (_, parts) => {
    // Arrange
    const key = logFileKey(parts);

    // Act
    const parsed = parseLogFileKey(key);

    // Assert
    expect(parsed).toEqual({
      ...(parts.prefix ? { prefix: parts.prefix } : {}),
      ...(parts.organizationId ? { organizationId: parts.organizationId } : {}),
      account: parts.account,
      region: parts.region,
      kind: parts.kind ?? 'CloudTrail',
      stamp: '20240305T0907Z',
      unique: parts.unique,
    });
  });

  const good =
    'AWSLogs/111111111111/CloudTrail/us-east-1/2024/03/05/111111111111_CloudTrail_us-east-1_20240305T0907Z_AbCdEfGh12345678.json.gz';
  it.each<[string, string]>([
    ['without .gz', good.replace('.json.gz', '.json')],
    ['with a 15-character unique part', good.replace(UNIQUE, UNIQUE.slice(1))],
    ['with a 17-character unique part', good.replace(UNIQUE, `${UNIQUE}X`)],
    ['with a dash in the unique part', good.replace(UNIQUE, 'AbCdEfGh-2345678')],
    [
      'with another account in the file name',
      good.replace('111111111111_CloudTrail', '222222222222_CloudTrail'),
    ],
    ['with another region in the file name', good.replace('_us-east-1_', '_eu-west-1_')],
    ['with a date folder other than the stamp', good.replace('2024/03/05', '2024/03/06')],
    ['without AWSLogs', good.replace('AWSLogs/', 'Logs/')],
    ['of a digest file', good.replace(/CloudTrail/g, 'CloudTrail-Digest')],
    ['with a malformed organization folder', good.replace('AWSLogs/', 'AWSLogs/o-EXAMPLE/')],
    ['with a minute stamp without Z', good.replace('0907Z', '0907')],
    [
      'with a month that does not exist',
      good.replace('2024/03/05', '2024/13/05').replace('20240305T', '20241305T'),
    ],
    ['with an hour that does not exist', good.replace('T0907Z', 'T2507Z')],
    ['that is empty', ''],
  ])('rejects a key %s', (_, key) => {
    // Act
    const parsed = parseLogFileKey(key);

    // Assert
    expect(parsed).toBeUndefined();
  });
});
