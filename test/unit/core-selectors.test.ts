import {
  DEFAULT_MAX_TRAILS,
  DEFAULT_TRAIL,
  type AdvancedEventSelector,
  type BasicEventSelector,
  type TrailConfig,
} from '../../lambda/core/config';
import {
  trailAccepts,
  validateTrailConfigs,
  type SelectableRecord,
} from '../../lambda/core/selectors';

const mgmtRead: SelectableRecord = {
  eventCategory: 'Management',
  managementEvent: true,
  eventSource: 'iam.amazonaws.com',
  eventName: 'ListUsers',
  eventType: 'AwsApiCall',
  readOnly: true,
  userIdentity: { arn: 'arn:aws:iam::111111111111:user/alice' },
};
const mgmtWrite: SelectableRecord = {
  eventCategory: 'Management',
  managementEvent: true,
  eventSource: 'kms.amazonaws.com',
  eventName: 'ScheduleKeyDeletion',
  eventType: 'AwsApiCall',
  readOnly: false,
  errorCode: 'AccessDenied',
  userIdentity: { arn: 'arn:aws:sts::111111111111:assumed-role/admin/bob' },
  sessionCredentialFromConsole: 'true',
};
const s3Read: SelectableRecord = {
  eventCategory: 'Data',
  managementEvent: false,
  eventSource: 's3.amazonaws.com',
  eventName: 'GetObject',
  eventType: 'AwsApiCall',
  readOnly: true,
  vpcEndpointId: 'vpce-0123',
  resources: [
    { type: 'AWS::S3::Object', ARN: 'arn:aws:s3:::audited/logs/a.txt' },
    { type: 'AWS::S3::Bucket', ARN: 'arn:aws:s3:::audited' },
  ],
};
const s3Write: SelectableRecord = {
  ...s3Read,
  eventName: 'PutObject',
  readOnly: false,
  resources: [
    { type: 'AWS::S3::Object', ARN: 'arn:aws:s3:::other/x.bin' },
    { type: 'AWS::S3::Bucket', ARN: 'arn:aws:s3:::other' },
  ],
};
const lambdaInvoke: SelectableRecord = {
  eventCategory: 'Data',
  managementEvent: false,
  eventSource: 'lambda.amazonaws.com',
  eventName: 'Invoke',
  eventType: 'AwsApiCall',
  readOnly: false,
  resources: [
    {
      type: 'AWS::Lambda::Function',
      ARN: 'arn:aws:lambda:us-east-1:111111111111:function:audited-fn',
    },
  ],
};
const insight: SelectableRecord = { eventCategory: 'Insight', eventType: 'AwsCloudTrailInsight' };
const oldMgmt: SelectableRecord = {
  eventSource: 'iam.amazonaws.com',
  eventName: 'ListUsers',
  eventType: 'AwsApiCall',
};
const oldData: SelectableRecord = {
  managementEvent: false,
  eventSource: 's3.amazonaws.com',
  eventName: 'GetObject',
};

const basic = (...eventSelectors: BasicEventSelector[]): TrailConfig => ({
  name: 'basic',
  eventSelectors,
});
const advanced = (...advancedEventSelectors: AdvancedEventSelector[]): TrailConfig => ({
  name: 'adv',
  advancedEventSelectors,
});
const only = (...FieldSelectors: AdvancedEventSelector['FieldSelectors']): TrailConfig =>
  advanced({ Name: 'x', FieldSelectors });

describe('trailAccepts: basic event selectors', () => {
  const s3Objects = { Type: 'AWS::S3::Object', Values: ['arn:aws:s3:::audited/'] };
  it.each<[string, TrailConfig, SelectableRecord, boolean]>([
    [
      'ReadWriteType All keeps a read management event',
      basic({ ReadWriteType: 'All' }),
      mgmtRead,
      true,
    ],
    [
      'ReadWriteType All keeps a write management event',
      basic({ ReadWriteType: 'All' }),
      mgmtWrite,
      true,
    ],
    ['ReadWriteType ReadOnly keeps a read', basic({ ReadWriteType: 'ReadOnly' }), mgmtRead, true],
    [
      'ReadWriteType ReadOnly drops a write',
      basic({ ReadWriteType: 'ReadOnly' }),
      mgmtWrite,
      false,
    ],
    [
      'ReadWriteType WriteOnly keeps a write',
      basic({ ReadWriteType: 'WriteOnly' }),
      mgmtWrite,
      true,
    ],
    [
      'ReadWriteType WriteOnly drops a read',
      basic({ ReadWriteType: 'WriteOnly' }),
      mgmtRead,
      false,
    ],
    ['an absent ReadWriteType keeps reads and writes', basic({}), mgmtWrite, true],
    [
      'IncludeManagementEvents false drops management events',
      basic({ IncludeManagementEvents: false }),
      mgmtRead,
      false,
    ],
    [
      'IncludeManagementEvents true keeps management events',
      basic({ IncludeManagementEvents: true }),
      mgmtRead,
      true,
    ],
    [
      'ExcludeManagementEventSources drops that source',
      basic({ ExcludeManagementEventSources: ['kms.amazonaws.com'] }),
      mgmtWrite,
      false,
    ],
    [
      'ExcludeManagementEventSources keeps other sources',
      basic({ ExcludeManagementEventSources: ['kms.amazonaws.com'] }),
      mgmtRead,
      true,
    ],
    ['no DataResources drops data events', basic({ ReadWriteType: 'All' }), s3Read, false],
    [
      'a DataResource whose ARN prefix matches keeps the data event',
      basic({ DataResources: [s3Objects] }),
      s3Read,
      true,
    ],
    [
      'a DataResource whose ARN prefix does not match drops the data event',
      basic({ DataResources: [s3Objects] }),
      s3Write,
      false,
    ],
    [
      'a DataResource of all S3 objects (prefix arn:aws:s3) keeps any S3 object event',
      basic({ DataResources: [{ Type: 'AWS::S3::Object', Values: ['arn:aws:s3'] }] }),
      s3Write,
      true,
    ],
    [
      'a DataResource of another type drops the data event',
      basic({ DataResources: [{ Type: 'AWS::Lambda::Function', Values: ['arn:aws:s3'] }] }),
      s3Read,
      false,
    ],
    [
      'a Lambda DataResource keeps invokes of functions under its prefix',
      basic({
        DataResources: [
          {
            Type: 'AWS::Lambda::Function',
            Values: ['arn:aws:lambda:us-east-1:111111111111:function:audited'],
          },
        ],
      }),
      lambdaInvoke,
      true,
    ],
    [
      'ReadOnly data selectors drop data writes',
      basic({
        ReadWriteType: 'ReadOnly',
        DataResources: [{ Type: 'AWS::S3::Object', Values: ['arn:aws:s3'] }],
      }),
      s3Write,
      false,
    ],
    [
      'WriteOnly data selectors keep data writes',
      basic({
        ReadWriteType: 'WriteOnly',
        DataResources: [{ Type: 'AWS::S3::Object', Values: ['arn:aws:s3'] }],
      }),
      s3Write,
      true,
    ],
    [
      'data selectors with IncludeManagementEvents false still keep data events',
      basic({ IncludeManagementEvents: false, DataResources: [s3Objects] }),
      s3Read,
      true,
    ],
    [
      'any of several selectors may keep the event',
      basic({ IncludeManagementEvents: false }, { DataResources: [s3Objects] }),
      s3Read,
      true,
    ],
    [
      'a management-only selector set drops insights',
      basic({ ReadWriteType: 'All' }),
      insight,
      false,
    ],
  ])('%s', (_, trail, record, expected) => {
    // Act
    const accepted = trailAccepts(trail, record);

    // Assert
    expect(accepted).toBe(expected);
  });
});

describe('trailAccepts: advanced event selectors', () => {
  it.each<[string, TrailConfig, SelectableRecord, boolean]>([
    ['Equals matches a value', only({ Field: 'eventName', Equals: ['ListUsers'] }), mgmtRead, true],
    [
      'Equals with several values matches any of them',
      only({ Field: 'eventName', Equals: ['Nope', 'ListUsers'] }),
      mgmtRead,
      true,
    ],
    [
      'Equals is exact, not a prefix',
      only({ Field: 'eventName', Equals: ['List'] }),
      mgmtRead,
      false,
    ],
    [
      'StartsWith matches a prefix',
      only({ Field: 'eventSource', StartsWith: ['iam.'] }),
      mgmtRead,
      true,
    ],
    [
      'StartsWith does not match elsewhere',
      only({ Field: 'eventSource', StartsWith: ['amazonaws'] }),
      mgmtRead,
      false,
    ],
    [
      'EndsWith matches a suffix',
      only({ Field: 'eventName', EndsWith: ['Users'] }),
      mgmtRead,
      true,
    ],
    [
      'EndsWith does not match a prefix',
      only({ Field: 'eventName', EndsWith: ['List'] }),
      mgmtRead,
      false,
    ],
    [
      'NotEquals holds for another value',
      only({ Field: 'eventName', NotEquals: ['GetUser'] }),
      mgmtRead,
      true,
    ],
    [
      'NotEquals fails for that value',
      only({ Field: 'eventName', NotEquals: ['ListUsers'] }),
      mgmtRead,
      false,
    ],
    [
      'NotEquals with several values fails when any one matches',
      only({ Field: 'eventName', NotEquals: ['A', 'ListUsers', 'B'] }),
      mgmtRead,
      false,
    ],
    [
      'NotEquals with several values holds when none matches',
      only({ Field: 'eventName', NotEquals: ['A', 'B'] }),
      mgmtRead,
      true,
    ],
    [
      'NotStartsWith with several values fails when any one matches',
      only({ Field: 'eventSource', NotStartsWith: ['s3.', 'iam.'] }),
      mgmtRead,
      false,
    ],
    [
      'NotStartsWith holds when none matches',
      only({ Field: 'eventSource', NotStartsWith: ['s3.', 'kms.'] }),
      mgmtRead,
      true,
    ],
    [
      'NotEndsWith with several values fails when any one matches',
      only({ Field: 'eventName', NotEndsWith: ['Keys', 'Users'] }),
      mgmtRead,
      false,
    ],
    [
      'NotEndsWith holds when none matches',
      only({ Field: 'eventName', NotEndsWith: ['Keys', 'Roles'] }),
      mgmtRead,
      true,
    ],
    [
      'several operators in one field selector must all hold',
      only({ Field: 'eventName', StartsWith: ['List'], NotEquals: ['ListUsers'] }),
      mgmtRead,
      false,
    ],
    [
      'readOnly Equals "true" keeps reads',
      only({ Field: 'readOnly', Equals: ['true'] }),
      mgmtRead,
      true,
    ],
    [
      'readOnly Equals "true" drops writes',
      only({ Field: 'readOnly', Equals: ['true'] }),
      mgmtWrite,
      false,
    ],
    [
      'readOnly Equals "false" keeps writes',
      only({ Field: 'readOnly', Equals: ['false'] }),
      mgmtWrite,
      true,
    ],
    [
      'eventType Equals',
      only({ Field: 'eventType', Equals: ['AwsCloudTrailInsight'] }),
      insight,
      true,
    ],
    [
      'userIdentity.arn StartsWith',
      only({
        Field: 'userIdentity.arn',
        StartsWith: ['arn:aws:sts::111111111111:assumed-role/admin/'],
      }),
      mgmtWrite,
      true,
    ],
    ['errorCode Equals', only({ Field: 'errorCode', Equals: ['AccessDenied'] }), mgmtWrite, true],
    [
      'errorCode Equals on a record without errorCode',
      only({ Field: 'errorCode', Equals: ['AccessDenied'] }),
      mgmtRead,
      false,
    ],
    [
      'errorCode NotEquals on a record without errorCode',
      only({ Field: 'errorCode', NotEquals: ['AccessDenied'] }),
      mgmtRead,
      true,
    ],
    [
      'sessionCredentialFromConsole Equals "true"',
      only({ Field: 'sessionCredentialFromConsole', Equals: ['true'] }),
      mgmtWrite,
      true,
    ],
    ['vpcEndpointId Equals', only({ Field: 'vpcEndpointId', Equals: ['vpce-0123'] }), s3Read, true],
    [
      'several field selectors all matching',
      only(
        { Field: 'eventCategory', Equals: ['Data'] },
        { Field: 'eventSource', Equals: ['s3.amazonaws.com'] },
      ),
      s3Read,
      true,
    ],
    [
      'several field selectors, one not matching',
      only(
        { Field: 'eventCategory', Equals: ['Data'] },
        { Field: 'eventSource', Equals: ['lambda.amazonaws.com'] },
      ),
      s3Read,
      false,
    ],
    [
      'several selectors, the second matching',
      advanced(
        { FieldSelectors: [{ Field: 'eventName', Equals: ['Nope'] }] },
        { FieldSelectors: [{ Field: 'eventName', Equals: ['ListUsers'] }] },
      ),
      mgmtRead,
      true,
    ],
    [
      'several selectors, none matching',
      advanced(
        { FieldSelectors: [{ Field: 'eventName', Equals: ['Nope'] }] },
        { FieldSelectors: [{ Field: 'eventName', Equals: ['Nada'] }] },
      ),
      mgmtRead,
      false,
    ],
    [
      'resources.ARN StartsWith matches the second resource',
      only({ Field: 'resources.ARN', StartsWith: ['arn:aws:s3:::audited'] }),
      s3Read,
      true,
    ],
    [
      'resources.ARN Equals matches any resource',
      only({ Field: 'resources.ARN', Equals: ['arn:aws:s3:::audited'] }),
      s3Read,
      true,
    ],
    [
      'resources.ARN NotEquals fails when any resource matches',
      only({ Field: 'resources.ARN', NotEquals: ['arn:aws:s3:::audited'] }),
      s3Read,
      false,
    ],
    [
      'resources.ARN NotStartsWith holds when no resource matches',
      only({ Field: 'resources.ARN', NotStartsWith: ['arn:aws:s3:::secret'] }),
      s3Read,
      true,
    ],
    [
      'resources.type Equals matches any resource',
      only({ Field: 'resources.type', Equals: ['AWS::S3::Bucket'] }),
      s3Read,
      true,
    ],
    [
      'resources.type Equals on a record without resources',
      only({ Field: 'resources.type', Equals: ['AWS::S3::Object'] }),
      mgmtRead,
      false,
    ],
    [
      'eventCategory Equals Management on an old record without eventCategory',
      only({ Field: 'eventCategory', Equals: ['Management'] }),
      oldMgmt,
      true,
    ],
    [
      'eventCategory Equals Data on an old record with managementEvent false',
      only({ Field: 'eventCategory', Equals: ['Data'] }),
      oldData,
      true,
    ],
    [
      'eventCategory Equals Management on an old record with managementEvent false',
      only({ Field: 'eventCategory', Equals: ['Management'] }),
      oldData,
      false,
    ],
    [
      'eventCategory Equals Insight',
      only({ Field: 'eventCategory', Equals: ['Insight'] }),
      insight,
      true,
    ],
  ])('%s → %p', (_, trail, record, expected) => {
    // Act
    const accepted = trailAccepts(trail, record);

    // Assert
    expect(accepted).toBe(expected);
  });
});

describe('trailAccepts: defaults', () => {
  const noSelectors: TrailConfig = { name: 'plain' };
  it.each<[string, SelectableRecord, boolean]>([
    ['a read management event', mgmtRead, true],
    ['a write management event', mgmtWrite, true],
    ['an old record without eventCategory', oldMgmt, true],
    ['an S3 data event', s3Read, false],
    ['a Lambda data event', lambdaInvoke, false],
    ['an old data record (managementEvent false)', oldData, false],
    ['an insight', insight, false],
  ])('a trail with no selectors keeps only management events: %s → %p', (_, record, expected) => {
    // Act
    const accepted = trailAccepts(noSelectors, record);

    // Assert
    expect(accepted).toBe(expected);
  });

  it.each<[string, TrailConfig]>([
    ['empty eventSelectors', { name: 'plain', eventSelectors: [] }],
    ['empty advancedEventSelectors', { name: 'plain', advancedEventSelectors: [] }],
  ])('a trail with %s behaves as one with no selectors', (_, trail) => {
    // Act
    const kept = [mgmtRead, s3Read, insight].map((record) => trailAccepts(trail, record));

    // Assert
    expect(kept).toEqual([true, false, false]);
  });

  it.each<[string, SelectableRecord]>([
    ['a management event', mgmtWrite],
    ['an S3 data event', s3Read],
    ['a Lambda data event', lambdaInvoke],
    ['an insight', insight],
    ['an old record without eventCategory', oldMgmt],
    ['an old data record without eventCategory', oldData],
    ['a network activity event', { eventCategory: 'NetworkActivity' }],
    ['an empty record', {}],
  ])('DEFAULT_TRAIL keeps %s', (_, record) => {
    // Act
    const accepted = trailAccepts(DEFAULT_TRAIL, record);

    // Assert
    expect(accepted).toBe(true);
  });
});

describe('validateTrailConfigs', () => {
  const trail = (overrides: Partial<TrailConfig> = {}): TrailConfig => ({
    name: 'audit',
    ...overrides,
  });
  const adv = (
    FieldSelectors: AdvancedEventSelector['FieldSelectors'],
    Name = 'mine',
  ): Partial<TrailConfig> => ({
    advancedEventSelectors: [
      { Name: 'first', FieldSelectors: [{ Field: 'eventCategory', Equals: ['Management'] }] },
      { Name, FieldSelectors },
    ],
  });

  it.each<[string, TrailConfig[], string[]]>([
    [
      'an unknown Field',
      [trail(adv([{ Field: 'eventTime', Equals: ['x'] }]))],
      [
        '"audit"',
        'advancedEventSelectors[1]',
        '"mine"',
        'FieldSelectors[0]',
        'eventTime',
        'not one of',
      ],
    ],
    [
      'a field selector without operator',
      [trail(adv([{ Field: 'eventName' }]))],
      ['"audit"', 'advancedEventSelectors[1]', '"mine"', 'eventName', 'needs at least one of'],
    ],
    [
      'an empty values list',
      [trail(adv([{ Field: 'eventName', Equals: [] }]))],
      ['"audit"', 'advancedEventSelectors[1]', 'Equals', 'non-empty list'],
    ],
    [
      'a selector without field selectors',
      [trail(adv([]))],
      ['"audit"', 'advancedEventSelectors[1]', '"mine"', 'at least one field selector'],
    ],
    [
      'StartsWith on readOnly',
      [trail(adv([{ Field: 'readOnly', StartsWith: ['t'] }]))],
      ['"audit"', 'advancedEventSelectors[1]', 'readOnly', 'Equals only', 'StartsWith'],
    ],
    [
      'StartsWith on eventCategory',
      [trail(adv([{ Field: 'eventCategory', StartsWith: ['Data'] }]))],
      ['"audit"', 'advancedEventSelectors[1]', 'eventCategory', 'Equals only'],
    ],
    [
      'NotEquals on resources.type',
      [trail(adv([{ Field: 'resources.type', NotEquals: ['AWS::S3::Object'] }]))],
      ['"audit"', 'advancedEventSelectors[1]', 'resources.type', 'Equals only', 'NotEquals'],
    ],
    [
      'readOnly Equals "yes"',
      [trail(adv([{ Field: 'readOnly', Equals: ['yes'] }]))],
      ['"audit"', 'advancedEventSelectors[1]', 'readOnly', '"true" or "false"'],
    ],
    [
      'both selector kinds',
      [
        trail({
          eventSelectors: [{ ReadWriteType: 'All' }],
          ...adv([{ Field: 'eventName', Equals: ['x'] }]),
        }),
      ],
      ['"audit"', 'not both'],
    ],
    [
      'six basic selectors',
      [
        trail({
          eventSelectors: Array.from({ length: 6 }, () => ({ ReadWriteType: 'All' as const })),
        }),
      ],
      ['"audit"', 'at most 5 eventSelectors', 'got 6'],
    ],
    [
      'a basic ReadWriteType that is not one of the three',
      [trail({ eventSelectors: [{}, { ReadWriteType: 'Both' as 'All' }] })],
      ['"audit"', 'eventSelectors[1]', 'ReadWriteType'],
    ],
    [
      'a DataResource without values',
      [trail({ eventSelectors: [{ DataResources: [{ Type: 'AWS::S3::Object', Values: [] }] }] })],
      ['"audit"', 'eventSelectors[0].DataResources[0]', 'ARN prefix'],
    ],
    [
      'more trails than allowed',
      Array.from({ length: DEFAULT_MAX_TRAILS + 1 }, (_, i) => trail({ name: `trail-${i}` })),
      ['at most 5 trails', 'got 6'],
    ],
    [
      'duplicate names',
      [trail({ name: 'same' }), trail({ name: 'same' })],
      ['"same"', 'used by another trail'],
    ],
    [
      'a name of two characters',
      [trail({ name: 'ab' })],
      ['"ab"', 'name must be 3-128 characters'],
    ],
    ['a name ending with a dash', [trail({ name: 'audit-' })], ['"audit-"', 'name must be']],
    ['a name with a space', [trail({ name: 'my trail' })], ['"my trail"', 'name must be']],
    ['a prefix with a leading slash', [trail({ prefix: '/logs' })], ['"audit"', 'prefix "/logs"']],
    ['a prefix with a trailing slash', [trail({ prefix: 'logs/' })], ['"audit"', 'prefix "logs/"']],
    ['a prefix with a double slash', [trail({ prefix: 'a//b' })], ['"audit"', 'prefix "a//b"']],
    [
      'a prefix over 200 characters',
      [trail({ prefix: 'p'.repeat(201) })],
      ['"audit"', 'at most 200 characters'],
    ],
    [
      'an organizationId in capitals',
      [trail({ organizationId: 'o-EXAMPLEORG1' })],
      ['"audit"', 'organizationId "o-EXAMPLEORG1"'],
    ],
    [
      'an organizationId that is too short',
      [trail({ organizationId: 'o-abc' })],
      ['"audit"', 'organizationId "o-abc"'],
    ],
    ['no trails at all', [], ['at least one trail']],
  ])(
    '%s yields one message naming the trail, the selector and the rule',
    (_, trails, expectedParts) => {
      // Act
      const errors = validateTrailConfigs(trails, DEFAULT_MAX_TRAILS);

      // Assert
      expect(errors).toHaveLength(1);
      expect(expectedParts.filter((part) => !errors[0]!.includes(part))).toEqual([]);
    },
  );

  it.each<[string, TrailConfig[], number]>([
    ['the default trail', [DEFAULT_TRAIL], DEFAULT_MAX_TRAILS],
    [
      'a full valid configuration',
      [
        {
          name: 'org.trail_1',
          prefix: 'audit/prod',
          organizationId: 'o-abcdefghij',
          logFileValidation: true,
        },
        {
          name: 'data-trail',
          eventSelectors: [
            {
              ReadWriteType: 'WriteOnly',
              IncludeManagementEvents: false,
              DataResources: [{ Type: 'AWS::S3::Object', Values: ['arn:aws:s3:::b/'] }],
            },
            { ReadWriteType: 'All', ExcludeManagementEventSources: ['kms.amazonaws.com'] },
          ],
        },
        {
          name: 'adv',
          advancedEventSelectors: [
            {
              Name: 'writes',
              FieldSelectors: [
                { Field: 'readOnly', Equals: ['false'] },
                { Field: 'eventCategory', Equals: ['Management', 'Data'] },
                { Field: 'resources.ARN', StartsWith: ['arn:aws:s3:::'], NotEndsWith: ['.tmp'] },
                { Field: 'eventSource', NotStartsWith: ['sts.'], NotEquals: ['kms.amazonaws.com'] },
              ],
            },
          ],
        },
      ],
      DEFAULT_MAX_TRAILS,
    ],
    [
      'six trails with maxTrails 6',
      Array.from({ length: 6 }, (_, i) => ({ name: `trail-${i}` })),
      6,
    ],
  ])('%s is valid', (_, trails, maxTrails) => {
    // Act
    const errors = validateTrailConfigs(trails, maxTrails);

    // Assert
    expect(errors).toEqual([]);
  });
});
