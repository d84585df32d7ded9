// SPDX-License-Identifier: GPL-2.0

#include <linux/irqflags.h>
#include <linux/spinlock.h>

__rust_helper void rust_helper_raw_spin_lock(raw_spinlock_t *lock)
{
	raw_spin_lock(lock);
}

__rust_helper void rust_helper_raw_spin_lock_nested(raw_spinlock_t *lock,
						    int subclass)
{
	raw_spin_lock_nested(lock, subclass);
}

__rust_helper void rust_helper_raw_spin_unlock(raw_spinlock_t *lock)
{
	raw_spin_unlock(lock);
}

__rust_helper int rust_helper_raw_spin_trylock(raw_spinlock_t *lock)
{
	return raw_spin_trylock(lock);
}

__rust_helper void rust_helper_raw_spin_lock_irq(raw_spinlock_t *lock)
{
	raw_spin_lock_irq(lock);
}

__rust_helper void rust_helper_raw_spin_unlock_irq(raw_spinlock_t *lock)
{
	raw_spin_unlock_irq(lock);
}

__rust_helper int rust_helper_raw_spin_trylock_irq(raw_spinlock_t *lock)
{
	return raw_spin_trylock_irq(lock);
}

__rust_helper unsigned long
rust_helper_raw_spin_lock_irqsave(raw_spinlock_t *lock)
{
	unsigned long flags;

	raw_spin_lock_irqsave(lock, flags);
	return flags;
}

__rust_helper unsigned long
rust_helper_raw_spin_lock_irqsave_nested(raw_spinlock_t *lock, int subclass)
{
	unsigned long flags;

	raw_spin_lock_irqsave_nested(lock, flags, subclass);
	return flags;
}

__rust_helper int rust_helper_raw_spin_trylock_irqsave(raw_spinlock_t *lock,
						       unsigned long *flags)
{
	return raw_spin_trylock_irqsave(lock, *flags);
}

__rust_helper void rust_helper_raw_spin_unlock_irqrestore(raw_spinlock_t *lock,
							  unsigned long flags)
{
	raw_spin_unlock_irqrestore(lock, flags);
}

__rust_helper void rust_helper_raw_spin_assert_is_held(raw_spinlock_t *lock)
{
	lockdep_assert_held(lock);
}

__rust_helper bool rust_helper_irqs_disabled(void)
{
	return irqs_disabled();
}

__rust_helper void rust_helper_lockdep_assert_irqs_disabled(void)
{
	lockdep_assert_irqs_disabled();
}

__rust_helper unsigned long rust_helper_local_irq_save(void)
{
	unsigned long flags;

	local_irq_save(flags);
	return flags;
}

__rust_helper void rust_helper_local_irq_restore(unsigned long flags)
{
	local_irq_restore(flags);
}
