import { Module } from '@nestjs/common';
import { SessionsCoreModule } from '@rcflow/sessions';
import { SchedulesController } from './schedules.controller';
import { SchedulesService } from './schedules.service';

/** Recurring schedules (the occurrences themselves are decided by the worker, libs/workflow/src/schedules). */
@Module({
  imports: [SessionsCoreModule],
  controllers: [SchedulesController],
  providers: [SchedulesService],
})
export class SchedulesModule {}
