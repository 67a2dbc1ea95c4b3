/**
 * errno values (include/uapi/asm-generic/errno-base.h). System calls in the model return
 * -errno like the raw syscall ABI; libc wrappers turn that into -1 and errno.
 */
export const EPERM = 1;
export const ESRCH = 3;
export const EINTR = 4;
export const ECHILD = 10;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EFAULT = 14;
export const EBUSY = 16;
export const EINVAL = 22;
export const ENOSPC = 28;
export const ENOSYS = 38;

const NAMES: Record<number, string> = {
  [EPERM]: 'EPERM',
  [ESRCH]: 'ESRCH',
  [EINTR]: 'EINTR',
  [ECHILD]: 'ECHILD',
  [EAGAIN]: 'EAGAIN',
  [ENOMEM]: 'ENOMEM',
  [EFAULT]: 'EFAULT',
  [EBUSY]: 'EBUSY',
  [EINVAL]: 'EINVAL',
  [ENOSPC]: 'ENOSPC',
  [ENOSYS]: 'ENOSYS',
};

/** "ENOMEM" for -12 or 12. */
export function errnoName(e: number): string {
  return NAMES[Math.abs(e)] ?? `errno ${Math.abs(e)}`;
}
