import { Module } from '@nestjs/common';
import { AdminConnection } from '../admin/admin-context';
import { WebhooksController } from './webhooks.controller';
import { WebhooksService } from './webhooks.service';

/** Outbound webhooks: subscriptions, their delivery logs, re-drives and test pings (the worker delivers). */
@Module({
  controllers: [WebhooksController],
  providers: [AdminConnection, WebhooksService],
})
export class WebhooksModule {}
