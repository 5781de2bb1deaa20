import { EventStream, LogArchive, LogPackager, OpentrailConfigError } from '../../lib';
import type { TrailConfig } from '../../lambda/core/config';
import { testStack } from './support/app';

function synth(trails: TrailConfig[]): void {
  const stack = testStack();
  const events = new EventStream(stack, 'Events');
  new LogPackager(stack, 'Packager', {
    trails,
    stream: events.stream,
    streamRetention: events.retentionPeriod,
    logBucket: new LogArchive(stack, 'Archive').bucket,
  });
}

describe('LogPackager trail prefixes and log-file validation', () => {
  it('refuses a validation-off trail under the prefix of a validation-on one, naming both', () => {
    let error: unknown;
    try {
      synth([
        { name: 'signed', prefix: 'audit', logFileValidation: true },
        { name: 'unsigned', prefix: 'audit' },
      ]);
    } catch (caught) {
      error = caught;
    }

    expect(error).toBeInstanceOf(OpentrailConfigError);
    expect((error as OpentrailConfigError).code).toBe('INVALID_TRAILS');
    expect((error as Error).message).toContain(
      'trail "unsigned" (logFileValidation off) shares prefix "audit" with trail "signed" (logFileValidation on)',
    );
  });

  it('refuses the same at the bucket root', () => {
    expect(() =>
      synth([{ name: 'signed', logFileValidation: true }, { name: 'unsigned' }]),
    ).toThrow(/trail "unsigned" \(logFileValidation off\) shares the bucket root/);
  });

  it.each<[string, TrailConfig[]]>([
    [
      'different prefixes',
      [
        { name: 'signed', prefix: 'audit', logFileValidation: true },
        { name: 'unsigned', prefix: 'other' },
      ],
    ],
    [
      'both validated under one prefix',
      [
        { name: 'first', prefix: 'audit', logFileValidation: true },
        { name: 'second', prefix: 'audit', logFileValidation: true },
      ],
    ],
    [
      'an organization folder apart',
      [
        { name: 'signed', logFileValidation: true },
        { name: 'unsigned', organizationId: 'o-exampleorgid' },
      ],
    ],
  ])('accepts %s', (_name, trails) => {
    expect(() => synth(trails)).not.toThrow();
  });
});
