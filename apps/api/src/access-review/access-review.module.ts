import { Module } from '@nestjs/common';
import { AccessReviewController } from './access-review.controller';
import { AccessReviewService } from './access-review.service';
import { AccessReviewStore } from './access-review.store';
import { ReviewStreams } from './review-streams';

/** GET /v1/access-review: who can reach a device, what a principal can reach, and why (not) for a pair. */
@Module({
  controllers: [AccessReviewController],
  providers: [AccessReviewService, AccessReviewStore, ReviewStreams],
})
export class AccessReviewModule {}
