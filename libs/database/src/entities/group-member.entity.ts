import { Entity, Index, PrimaryColumn, CreateDateColumn } from 'typeorm';

/** Membership of a principal (user, service or group) in a group. */
@Entity('group_members')
@Index('ix_group_members_member', ['memberId'])
export class GroupMember {
  @PrimaryColumn({ name: 'group_id', type: 'uuid' })
  groupId: string;

  @PrimaryColumn({ name: 'member_id', type: 'uuid' })
  memberId: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
