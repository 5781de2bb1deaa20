import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { deliveryNoticeMessage } from '../core/notices';
import type { DeliveryNotice, DeliveryNotifier } from '../core/ports';

/** DeliveryNotifier over SNS: one topic per trail; trails without one get no notices. */
export class SnsDeliveryNotifier implements DeliveryNotifier {
  constructor(
    private readonly client: SNSClient,
    private readonly topicsByTrail: Readonly<Record<string, string>>,
  ) {}

  async logFileDelivered(notice: DeliveryNotice): Promise<void> {
    const topicArn = this.topicsByTrail[notice.trail];
    if (!topicArn) return;
    await this.client.send(
      new PublishCommand({
        TopicArn: topicArn,
        Message: deliveryNoticeMessage(notice.bucket, notice.key),
      }),
    );
  }
}
