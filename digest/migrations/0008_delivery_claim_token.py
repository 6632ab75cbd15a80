from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('digest', '0007_ingestrun_cut_counts'),
    ]

    operations = [
        migrations.AddField(
            model_name='delivery',
            name='claim_token',
            field=models.CharField(blank=True, help_text='Whose claim it is: checked before each handover.', max_length=32),
        ),
    ]
