import { Module } from '@nestjs/common';
import { SessionIntake } from './intake/session-intake.service';
import { SessionTransitions } from './session-transitions.service';

/** The owners of session writes: intake (a session comes into being) and transitions (it moves). */
@Module({ providers: [SessionIntake, SessionTransitions], exports: [SessionIntake, SessionTransitions] })
export class SessionsCoreModule {}
