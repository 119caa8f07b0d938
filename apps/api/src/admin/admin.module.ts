import { Module } from '@nestjs/common';
import { SessionsCoreModule } from '@rcflow/sessions';
import { AccessRevocation } from './access-revocation.service';
import { AdminConnection } from './admin-context';
import { ApiKeysController } from './api-keys.controller';
import { ApiKeysService } from './api-keys.service';
import { ClientSettingsController } from './client-settings.controller';
import { ClientSettingsService } from './client-settings.service';
import { CollectionsController } from './collections.controller';
import { CollectionsService } from './collections.service';
import { DevicesController } from './devices.controller';
import { DevicesService } from './devices.service';
import { EnrolmentAdminController } from './enrolment-admin.controller';
import { EnrolmentAdminService } from './enrolment-admin.service';
import { PrincipalsController } from './principals.controller';
import { PrincipalsService } from './principals.service';
import { RoleAssignmentsController } from './role-assignments.controller';
import { RoleAssignmentsService } from './role-assignments.service';

/**
 * The administration API under /v1: devices, collections, client settings, principals and groups,
 * role assignments, API keys, enrolment tokens. One service per aggregate owns its writes (each in
 * one transaction with its audit event) and its reads; controllers only call them.
 */
@Module({
  imports: [SessionsCoreModule],
  controllers: [
    DevicesController,
    CollectionsController,
    ClientSettingsController,
    PrincipalsController,
    RoleAssignmentsController,
    ApiKeysController,
    EnrolmentAdminController,
  ],
  providers: [
    AdminConnection,
    AccessRevocation,
    DevicesService,
    CollectionsService,
    ClientSettingsService,
    PrincipalsService,
    RoleAssignmentsService,
    ApiKeysService,
    EnrolmentAdminService,
  ],
})
export class AdminModule {}
